"""The knowledge base (知识库): articles that record a problem and how to solve it.

- :mod:`.store`: articles, versions and their lifecycle (draft → in_review → published →
  retired), and the links of records to articles, pinned to the version used; each step
  audited.
- :mod:`.search`: Chinese-aware search keys (the phrase normaliser, CJK bigrams, words).
- :mod:`.suggest`: articles ranked for a record (kind, product, category, text).
- :mod:`.reviews`: an overdue review is a missed obligation, told once per lapse
  (``kb.review_due``) by the breach watch's scan.
- :mod:`.stats`: link rate of resolved records, first-time fix with and without an
  article, articles created from records, stale articles.

See docs/knowledge-base.md.
"""

from servq.core.kb.reviews import scan as scan_reviews
from servq.core.kb.stats import stats
from servq.core.kb.store import (CONTENT, STATUSES, TRANSITIONS, KbRefused, content_of, create_article,
                                 current_version, edit_article, find_articles, link, transition, unlink)
from servq.core.kb.suggest import suggest, suggestions

__all__ = ["CONTENT", "STATUSES", "TRANSITIONS", "KbRefused", "content_of", "create_article",
           "current_version", "edit_article", "find_articles", "link", "scan_reviews", "stats", "suggest",
           "suggestions",
           "transition", "unlink"]
