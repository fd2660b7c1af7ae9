"""The internal survey in which couriers rate their station manager (管理人员服务评价).

Seed 000 服务质量管理制度(八篇) 第二章 第二条: the manager standard is about serving the couriers,
with five aims, each an item on a 1-5 scale: 公正廉洁、诚信务实 → 放心; 热情礼貌、语言规范 → 舒心;
及时高效、倾力而为 → 称心; 急之所急、想之所想 → 安心; 人本关怀、温馨入微 → 顺心. Quarterly [P].
An invitation names the manager rated (``staff_id``), so the answers count in that
manager's quality file.
"""

from __future__ import annotations

CODE = "courier_manager_service"
MANAGER_SURVEY_TITLE = {"en": "Station manager service (internal)", "zh": "管理人员服务评价(内部)"}

_SCALE = {"min": 1, "max": 5, "labels": {"1": {"en": "Very poor", "zh": "很差"},
                                          "5": {"en": "Excellent", "zh": "很好"}}}
_DIMENSIONS = [
    {"code": "assurance", "title": {"en": "Assurance", "zh": "保证性"}},
    {"code": "responsiveness", "title": {"en": "Responsiveness", "zh": "响应性"}},
    {"code": "empathy", "title": {"en": "Empathy", "zh": "移情性"}},
]
_ITEMS = [
    ("fair_honest", "assurance", "Fair, honest and practical: couriers can rely on the manager (放心)",
     "公正廉洁、诚信务实,让快递人员放心"),
    ("courteous", "assurance", "Warm, polite, proper language: couriers feel at ease (舒心)",
     "热情礼貌、语言规范,让快递人员舒心"),
    ("prompt", "responsiveness", "Prompt and efficient, does the utmost: couriers are satisfied (称心)",
     "及时高效、倾力而为,让快递人员称心"),
    ("anticipates", "empathy", "Sees the couriers' urgent needs and thinks ahead for them (安心)",
     "急之所急、想之所想,让快递人员安心"),
    ("cares", "empathy", "Caring and attentive to the person: couriers feel looked after (顺心)",
     "人本关怀、温馨入微,让快递人员顺心"),
]


def manager_instrument() -> tuple[dict, int]:
    """The instrument document and its version."""
    return ({"code": CODE, "version": 1,
             "title": {"en": "Station manager service", "zh": "管理人员服务评价"},
             "description": {"en": "Couriers rate the service of their station manager.",
                             "zh": "快递人员评价网点管理人员的服务。"},
             "scale": _SCALE, "dimensions": _DIMENSIONS,
             "items": [{"code": code, "dimension": dim, "text": {"en": en, "zh": zh}, "reverse": False,
                        "required": True} for code, dim, en, zh in _ITEMS]}, 1)
