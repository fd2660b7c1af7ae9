"""The built-in instruments: SERVQUAL (1988 and 1991 wordings), CSAT and NPS.

SERVQUAL is Parasuraman, Zeithaml & Berry's 22-item scale in five dimensions:
tangibles (items 1-4), reliability (5-9), responsiveness (10-13), assurance (14-17) and
empathy (18-22), rated on a 7-point scale from "strongly disagree" to "strongly agree".

* ``servqual`` is the original wording (Journal of Retailing 64(1), 1988). Items 10-13
  and 18-22 are negatively worded ("... does not tell customers exactly when services
  will be performed") and are reverse scored (``8 - x``) so that a higher number always
  means better service.
* ``servqual_1991`` is the revised wording (Journal of Retailing 67(4), 1991), where
  every item is positively worded and none is reversed.

"XYZ" of the published scale reads "the company" (“该公司”). The Chinese texts are
translations made for servq.
"""

from __future__ import annotations

SEVEN_POINT = {
    "min": 1,
    "max": 7,
    "labels": {
        "1": {"en": "Strongly disagree", "zh": "非常不同意"},
        "7": {"en": "Strongly agree", "zh": "非常同意"},
    },
}

DIMENSIONS = [
    {
        "code": "tangibles",
        "title": {"en": "Tangibles", "zh": "有形性"},
        "description": {
            "en": "The appearance of the physical facilities, equipment, personnel and "
                  "communication materials.",
            "zh": "实体设施、设备、员工和宣传资料的外观。",
        },
    },
    {
        "code": "reliability",
        "title": {"en": "Reliability", "zh": "可靠性"},
        "description": {
            "en": "The ability to perform the promised service dependably and accurately.",
            "zh": "可靠而准确地履行所承诺服务的能力。",
        },
    },
    {
        "code": "responsiveness",
        "title": {"en": "Responsiveness", "zh": "响应性"},
        "description": {
            "en": "The willingness to help customers and provide prompt service.",
            "zh": "帮助顾客并迅速提供服务的意愿。",
        },
    },
    {
        "code": "assurance",
        "title": {"en": "Assurance", "zh": "保证性"},
        "description": {
            "en": "The knowledge and courtesy of employees and their ability to convey trust "
                  "and confidence.",
            "zh": "员工的知识和礼貌,以及他们传递信任和信心的能力。",
        },
    },
    {
        "code": "empathy",
        "title": {"en": "Empathy", "zh": "移情性"},
        "description": {
            "en": "The caring, individualized attention the company provides its customers.",
            "zh": "公司给予顾客的关心和个性化关注。",
        },
    },
]

#: (dimension, English, Chinese, reverse scored) in the published order, 1988 wording.
ITEMS_1988 = [
    ("tangibles", "The company has up-to-date equipment.", "该公司拥有先进的设备。", False),
    ("tangibles", "The company's physical facilities are visually appealing.",
     "该公司的实体设施在视觉上吸引人。", False),
    ("tangibles", "The company's employees are well dressed and appear neat.",
     "该公司的员工穿着得体、外表整洁。", False),
    ("tangibles", "The appearance of the physical facilities of the company is in keeping "
                  "with the type of services provided.",
     "该公司实体设施的外观与其所提供的服务类型相称。", False),
    ("reliability", "When the company promises to do something by a certain time, it does so.",
     "该公司承诺在某个时间之前做某事时,能够做到。", False),
    ("reliability", "When you have problems, the company is sympathetic and reassuring.",
     "当您遇到问题时,该公司表示同情并让您安心。", False),
    ("reliability", "The company is dependable.", "该公司是可以信赖的。", False),
    ("reliability", "The company provides its services at the time it promises to do so.",
     "该公司在其承诺的时间提供服务。", False),
    ("reliability", "The company keeps its records accurately.", "该公司准确地保存记录。", False),
    ("responsiveness", "The company does not tell customers exactly when services will be "
                       "performed.",
     "该公司不会确切地告诉顾客何时提供服务。", True),
    ("responsiveness", "You do not receive prompt service from the company's employees.",
     "您没有从该公司员工那里得到及时的服务。", True),
    ("responsiveness", "Employees of the company are not always willing to help customers.",
     "该公司的员工并不总是愿意帮助顾客。", True),
    ("responsiveness", "Employees of the company are too busy to respond to customer requests "
                       "promptly.",
     "该公司的员工太忙,无法及时回应顾客的要求。", True),
    ("assurance", "You can trust employees of the company.", "您可以信任该公司的员工。", False),
    ("assurance", "You feel safe in your transactions with the company's employees.",
     "您在与该公司员工的交易中感到安心。", False),
    ("assurance", "Employees of the company are polite.", "该公司的员工彬彬有礼。", False),
    ("assurance", "Employees get adequate support from the company to do their jobs well.",
     "员工能从该公司得到足够的支持,以做好本职工作。", False),
    ("empathy", "The company does not give you individual attention.",
     "该公司没有给予您个别的关注。", True),
    ("empathy", "Employees of the company do not give you personal attention.",
     "该公司的员工没有给予您个人的关注。", True),
    ("empathy", "Employees of the company do not know what your needs are.",
     "该公司的员工不了解您的需求。", True),
    ("empathy", "The company does not have your best interests at heart.",
     "该公司没有把您的最大利益放在心上。", True),
    ("empathy", "The company does not have operating hours convenient to all their customers.",
     "该公司的营业时间并非对所有顾客都方便。", True),
]

#: The revised, positively worded items (1991).
ITEMS_1991 = [
    ("tangibles", "The company has modern-looking equipment.", "该公司拥有外观现代的设备。"),
    ("tangibles", "The company's physical facilities are visually appealing.",
     "该公司的实体设施在视觉上吸引人。"),
    ("tangibles", "The company's employees are neat-appearing.", "该公司的员工外表整洁。"),
    ("tangibles", "Materials associated with the service (such as pamphlets or statements) are "
                  "visually appealing at the company.",
     "该公司与服务相关的资料(如宣传册或账单)在视觉上吸引人。"),
    ("reliability", "When the company promises to do something by a certain time, it does so.",
     "该公司承诺在某个时间之前做某事时,能够做到。"),
    ("reliability", "When you have a problem, the company shows a sincere interest in solving it.",
     "当您遇到问题时,该公司真诚地关心并设法解决。"),
    ("reliability", "The company performs the service right the first time.",
     "该公司第一次就能正确地提供服务。"),
    ("reliability", "The company provides its services at the time it promises to do so.",
     "该公司在其承诺的时间提供服务。"),
    ("reliability", "The company insists on error-free records.", "该公司坚持记录准确无误。"),
    ("responsiveness", "Employees of the company tell you exactly when services will be performed.",
     "该公司的员工确切地告诉您何时提供服务。"),
    ("responsiveness", "Employees of the company give you prompt service.",
     "该公司的员工为您提供及时的服务。"),
    ("responsiveness", "Employees of the company are always willing to help you.",
     "该公司的员工总是乐意帮助您。"),
    ("responsiveness", "Employees of the company are never too busy to respond to your requests.",
     "该公司的员工从不因太忙而不回应您的要求。"),
    ("assurance", "The behavior of employees of the company instills confidence in you.",
     "该公司员工的行为让您产生信心。"),
    ("assurance", "You feel safe in your transactions with the company.",
     "您在与该公司的交易中感到安心。"),
    ("assurance", "Employees of the company are consistently courteous with you.",
     "该公司的员工始终对您彬彬有礼。"),
    ("assurance", "Employees of the company have the knowledge to answer your questions.",
     "该公司的员工具备回答您问题的知识。"),
    ("empathy", "The company gives you individual attention.", "该公司给予您个别的关注。"),
    ("empathy", "The company has operating hours convenient to all its customers.",
     "该公司的营业时间对所有顾客都方便。"),
    ("empathy", "The company has employees who give you personal attention.",
     "该公司有员工给予您个人的关注。"),
    ("empathy", "The company has your best interests at heart.", "该公司把您的最大利益放在心上。"),
    ("empathy", "Employees of the company understand your specific needs.",
     "该公司的员工了解您的具体需求。"),
]


def _servqual(code: str, title: dict, description: dict, items: list) -> dict:
    return {
        "code": code,
        "version": 1,
        "title": title,
        "description": description,
        "scale": SEVEN_POINT,
        "dimensions": DIMENSIONS,
        "items": [
            {"code": f"q{n}", "dimension": dim, "text": {"en": en, "zh": zh},
             "reverse": bool(rest and rest[0]), "required": True}
            for n, (dim, en, zh, *rest) in enumerate(items, start=1)
        ],
    }


SERVQUAL = _servqual(
    "servqual",
    {"en": "SERVQUAL (22 items, 1988 wording)", "zh": "SERVQUAL 服务质量量表(22项,1988年版)"},
    {"en": "Parasuraman, Zeithaml and Berry's 22-item scale; items 10-13 and 18-22 are "
           "negatively worded and reverse scored.",
     "zh": "Parasuraman、Zeithaml 和 Berry 的 22 项量表;第 10-13 项和第 18-22 项为反向表述,反向计分。"},
    ITEMS_1988,
)

SERVQUAL_1991 = _servqual(
    "servqual_1991",
    {"en": "SERVQUAL (22 items, revised 1991 wording)", "zh": "SERVQUAL 服务质量量表(22项,1991年修订版)"},
    {"en": "The revised scale, every item positively worded.",
     "zh": "修订后的量表,所有题项均为正向表述。"},
    ITEMS_1991,
)

CSAT = {
    "code": "csat",
    "version": 1,
    "title": {"en": "Customer satisfaction (CSAT)", "zh": "顾客满意度(CSAT)"},
    "description": {"en": "One question on a 1-5 scale; CSAT is the share of 4 and 5 answers.",
                    "zh": "一个 1-5 分的问题;CSAT 为选择 4 分和 5 分的比例。"},
    "scale": {
        "min": 1,
        "max": 5,
        "labels": {
            "1": {"en": "Very dissatisfied", "zh": "非常不满意"},
            "2": {"en": "Dissatisfied", "zh": "不满意"},
            "3": {"en": "Neutral", "zh": "一般"},
            "4": {"en": "Satisfied", "zh": "满意"},
            "5": {"en": "Very satisfied", "zh": "非常满意"},
        },
    },
    "dimensions": [],
    "items": [{
        "code": "satisfaction",
        "text": {"en": "Overall, how satisfied are you with the service you received?",
                 "zh": "总体而言,您对所获得的服务满意吗?"},
        "metric": "csat",
        "required": True,
        "reverse": False,
    }],
}

NPS = {
    "code": "nps",
    "version": 1,
    "title": {"en": "Net Promoter Score (NPS)", "zh": "净推荐值(NPS)"},
    "description": {"en": "One question on a 0-10 scale; NPS is the % of 9-10 minus the % of 0-6.",
                    "zh": "一个 0-10 分的问题;NPS 为 9-10 分的比例减去 0-6 分的比例。"},
    "scale": {
        "min": 0,
        "max": 10,
        "labels": {
            "0": {"en": "Not at all likely", "zh": "完全不可能"},
            "10": {"en": "Extremely likely", "zh": "极有可能"},
        },
    },
    "dimensions": [],
    "items": [{
        "code": "recommend",
        "text": {"en": "How likely is it that you would recommend us to a friend or colleague?",
                 "zh": "您向朋友或同事推荐我们的可能性有多大?"},
        "metric": "nps",
        "required": True,
        "reverse": False,
    }],
}

BUILTIN = {doc["code"]: doc for doc in (SERVQUAL, SERVQUAL_1991, CSAT, NPS)}
