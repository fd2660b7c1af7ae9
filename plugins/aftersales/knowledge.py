"""The after-sales demo's knowledge base: one published article per kind of fault the demo
tickets report (codes ``KB-<category>``), written through core's knowledge base (plugin
surface ``kb_create_article``, ``kb_transition``) so the demo's tickets get real
suggestions and their ``kb_articles`` become real links on resolution.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from servq import KbArticle, kb_create_article, kb_transition

TICKET = "aftersales.ticket"
#: code, category, title en, title zh, problem, cause, steps
ARTICLES = (
    ("KB-hardware", "hardware", "Controller shows E3 and stops the pump", "控制器报E3，水泵停机",
     "Controller shows E3, pump stops 控制器报E3，水泵停机", "relay K2 burnt out 继电器K2烧毁",
     ["Isolate the power 断电", "Replace relay K2 更换继电器K2", "Clear E3 and restart 清除E3并重启"]),
    ("KB-sensor", "sensor", "Conductivity reading drifts", "电导率读数漂移",
     "Conductivity reading drifts 电导率读数漂移", "probe fouled 探头结垢",
     ["Clean the probe with dilute acid 稀酸清洗探头", "Recalibrate 重新校准"]),
    ("KB-wiring", "wiring", "Dosing pump does not start", "加药泵不启动",
     "Dosing pump does not start 加药泵不启动", "loose terminal 端子松动",
     ["Check terminals X3 and X4 检查X3、X4端子", "Tighten and test the pump 紧固后试泵"]),
    ("KB-software", "software", "Touch screen frozen", "触摸屏死机",
     "Touch screen frozen 触摸屏死机", "firmware 2.1 bug 固件缺陷",
     ["Power-cycle the panel 面板断电重启", "Upgrade the firmware to 2.2 升级固件至2.2"]),
    ("KB-usage", "usage", "How to set the backwash timer", "如何设置反洗定时",
     "How to set the backwash timer 如何设置反洗定时", "operator not trained 操作不熟",
     ["Menu > Backwash > Timer 菜单>反洗>定时", "Set interval and duration 设置间隔和时长"]),
)


def seed_articles(session, at: datetime) -> None:
    """Write and publish the articles at ``at``; those whose code exists are left as they are."""
    taken = set(session.scalars(select(KbArticle.code).where(KbArticle.code.in_([a[0] for a in ARTICLES]))))
    for code, category, en, zh, problem, cause, steps in ARTICLES:
        if code in taken:
            continue
        article = kb_create_article(session, {
            "code": code, "title": {"en": en, "zh": zh}, "problem": problem, "cause": cause,
            "solution_steps": steps, "category": category, "applies_to": [TICKET],
            "review_every_days": 180}, actor_id=None, now=at)
        kb_transition(session, article, "publish", actor_id=None, role="owner", now=at)
