"""The knowledge base: ``/api/v1/kb``.

``GET|POST /kb/articles`` (search with ``q``: Chinese-aware), ``GET|PATCH
/kb/articles/<id>`` (PATCH needs If-Match), ``POST /kb/articles/<id>/transitions``
(``submit``, ``return``, ``publish``, ``review``, ``retire``; If-Match),
``GET /kb/articles/<id>/versions[/<n>]``, ``GET /kb/stats``. A record's side
(suggestions, links) is :mod:`servq.core.api.kb_records`. Rules: :mod:`servq.core.kb`;
see docs/knowledge-base.md.
"""

from __future__ import annotations

from datetime import timedelta

from flask import g
from flask.views import MethodView
from flask_smorest import abort
from marshmallow import Schema, fields, validate
from sqlalchemy import select

from servq.core.api.args import Int
from servq.core.api.blueprint import Blueprint, lock_for_write
from servq.core.api.context import actor_id, enabled_kinds, require
from servq.core.api.pagination import PAGINATION_HEADER_DOC, PageArgs, paginate
from servq.core.api.records import get_record
from servq.core.db import utcnow
from servq.core.db.session import request_session
from servq.core.kb import (STATUSES, TRANSITIONS, KbRefused, content_of, create_article, edit_article,
                           stats, transition)
from servq.core.kb.search import escape, matches
from servq.core.models import KbArticle, KbArticleVersion

URL = ""
blp = Blueprint("kb", __name__, description="Knowledge base: articles, versions, search, KPIs.")

CODE = validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$", error="Letters, digits, '.', '_' and '-', "
                                                                   "at most 100, starting with a letter or digit.")
TEXT = validate.Length(max=10_000)
KIND = validate.Regexp(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)?$", error="A record kind name.")


class KbTitleSchema(Schema):
    en = fields.String(validate=validate.Length(min=1, max=300))
    zh = fields.String(validate=validate.Length(min=1, max=300))


def _title_given(title):
    if not title:
        raise validate.ValidationError("Give the title in at least one language (en, zh).")


class KbContentSchema(Schema):
    title = fields.Nested(KbTitleSchema, validate=_title_given, metadata={"description": "{en, zh}"})
    problem = fields.String(validate=TEXT)
    symptoms = fields.String(validate=TEXT)
    cause = fields.String(validate=TEXT)
    solution_steps = fields.List(fields.String(validate=validate.Length(min=1, max=2000)),
                                 validate=validate.Length(max=100))
    product = fields.String(allow_none=True, validate=validate.Length(min=1, max=200),
                            metadata={"description": "Tag: the product it is about"})
    category = fields.String(allow_none=True, validate=validate.Length(min=1, max=200),
                             metadata={"description": "Tag: the category of problem"})
    applies_to = fields.List(fields.String(validate=KIND), validate=validate.Length(max=50),
                             metadata={"description": "Record kinds it applies to (empty: any)"})
    owner_id = fields.UUID(metadata={"description": "The user who keeps it up to date (default: its author)"})
    review_every_days = Int(min=1, max=3660, metadata={"description": "Review interval (default 90 days)"})


class KbArticleInputSchema(KbContentSchema):
    code = fields.String(required=True, validate=CODE)
    title = fields.Nested(KbTitleSchema, required=True, validate=_title_given)
    source_record_id = fields.UUID(allow_none=True, metadata={
        "description": "The record it was written from (\"created from this ticket\")"})


class ArticleSchema(Schema):
    id = fields.UUID(required=True)
    code = fields.String(required=True)
    status = fields.String(required=True, metadata={"description": "draft, in_review, published or retired"})
    version = fields.Integer(required=True, metadata={"description": "Its newest version (shown here)"})
    published_version = fields.Integer(allow_none=True, metadata={"description": "What links pin"})
    title = fields.Dict(required=True)
    problem = fields.String()
    symptoms = fields.String()
    cause = fields.String()
    solution_steps = fields.List(fields.String())
    product = fields.String(allow_none=True)
    category = fields.String(allow_none=True)
    applies_to = fields.List(fields.String())
    owner_id = fields.UUID(allow_none=True)
    review_every_days = fields.Integer(required=True)
    reviewed_at = fields.AwareDateTime(allow_none=True)
    review_due_at = fields.AwareDateTime(allow_none=True)
    review_overdue = fields.Boolean(required=True)
    source_record_id = fields.UUID(allow_none=True)
    links = fields.Integer(required=True, metadata={"description": "Records linked to it"})
    created_at = fields.AwareDateTime(required=True)
    updated_at = fields.AwareDateTime(required=True)


class KbVersionSchema(Schema):
    article_id = fields.UUID(required=True)
    version = fields.Integer(required=True)
    title = fields.Dict(required=True)
    problem = fields.String()
    symptoms = fields.String()
    cause = fields.String()
    solution_steps = fields.List(fields.String())
    product = fields.String(allow_none=True)
    category = fields.String(allow_none=True)
    applies_to = fields.List(fields.String())
    created_by = fields.UUID(allow_none=True)
    created_at = fields.AwareDateTime(required=True)
    published_at = fields.AwareDateTime(allow_none=True)


class ArticleQuery(PageArgs):
    q = fields.String(validate=validate.Length(min=1, max=200), metadata={
        "description": "Search (Chinese-aware: every word or two-character piece must occur)"})
    status = fields.String(validate=validate.OneOf(STATUSES))
    product = fields.String(validate=validate.Length(max=200))
    category = fields.String(validate=validate.Length(max=200))
    kind = fields.String(validate=KIND, metadata={"description": "Applies to this record kind"})
    stale = fields.Boolean(metadata={"description": "true: published with the review overdue"})


class KbTransitionSchema(Schema):
    action = fields.String(required=True, validate=validate.OneOf(tuple(TRANSITIONS)))


class KbStatsQuery(Schema):
    since = fields.AwareDateTime(required=True)
    until = fields.AwareDateTime(required=True)


def view(article: KbArticle, version: KbArticleVersion) -> dict:
    """An article as the API shows it: its settings and its newest version's content."""
    now = utcnow()
    return {**{c.key: getattr(article, c.key) for c in KbArticle.__table__.columns if c.key != "tenant_id"},
            **content_of(version),
            "review_overdue": article.status == "published" and article.review_due_at is not None
            and article.review_due_at <= now}


def views(session, articles: list[KbArticle]) -> list[dict]:
    """:func:`view` of many articles, their versions read in one query."""
    if not articles:
        return []
    wanted = {(a.id, a.version) for a in articles}
    rows = session.scalars(select(KbArticleVersion).where(
        KbArticleVersion.article_id.in_([a.id for a in articles]))
        .where(KbArticleVersion.version.in_(sorted({a.version for a in articles})))).all()
    by_key = {(v.article_id, v.version): v for v in rows if (v.article_id, v.version) in wanted}
    return [view(a, by_key[(a.id, a.version)]) for a in articles]


def get_article(article_id) -> KbArticle:
    article = request_session().scalar(select(KbArticle).where(KbArticle.id == article_id))
    if article is None:
        abort(404, message="Article not found.")
    return article


def _refused(refused: KbRefused):
    abort(refused.status, message=refused.message,
          **({"errors": {"json": refused.errors}} if refused.errors else {}))


def _role() -> str:
    return g.membership.role


@blp.route("/kb/articles")
class Articles(MethodView):
    @require("read")
    @blp.arguments(ArticleQuery(), location="query")
    @blp.response(200, ArticleSchema(many=True), headers=PAGINATION_HEADER_DOC)
    def get(self, args):
        """Articles (each with its newest version), by code; ``q`` searches their text in
        any language, Chinese by two-character pieces (``漏水`` finds ``卫生间漏水维修``)."""
        session = request_session()
        version = KbArticleVersion
        stmt = select(KbArticle).join(version, (version.article_id == KbArticle.id)
                                      & (version.version == KbArticle.version))
        if "q" in args:
            condition = matches(version.search_key, args["q"])
            if condition is None:
                abort(422, message="The search has no letters or characters to look for.",
                      errors={"query": {"q": ["Nothing to search for."]}})
            stmt = stmt.where(condition)
        for name, column in (("status", KbArticle.status), ("product", version.product),
                             ("category", version.category)):
            if name in args:
                stmt = stmt.where(column == args[name])
        if "kind" in args:
            stmt = stmt.where((version.kinds_key == " ") | version.kinds_key.like(f"% {escape(args['kind'])} %", escape="\\"))
        if "stale" in args:
            stale = (KbArticle.status == "published") & (KbArticle.review_due_at <= utcnow())
            stmt = stmt.where(stale if args["stale"] else ~stale)
        headers: dict = {}
        rows = paginate(session, stmt.order_by(KbArticle.code, KbArticle.id), args, headers)
        return views(session, rows), 200, headers

    @require("write")
    @blp.arguments(KbArticleInputSchema())
    @blp.created(ArticleSchema)
    def post(self, body):
        """Write a new article (a draft, version 1); ``source_record_id`` names the record
        it was written from (404 when that record is not yours)."""
        session = request_session()
        if body.get("source_record_id"):
            get_record(body["source_record_id"], enabled_kinds())
        try:
            article = create_article(session, body, actor_id=actor_id(), now=utcnow())
        except KbRefused as refused:
            session.rollback()
            _refused(refused)
        result = views(session, [article])[0]
        session.commit()
        return result


@blp.route("/kb/articles/<uuid:article_id>")
class ArticleById(MethodView):
    @require("read")
    @blp.etag
    @blp.response(200, ArticleSchema)
    def get(self, article_id):
        """One article with its newest version."""
        return views(request_session(), [get_article(article_id)])[0]

    @require("write")
    @blp.etag
    @blp.arguments(KbContentSchema())
    @blp.response(200, ArticleSchema)
    def patch(self, body, article_id):
        """Edit (needs If-Match): a draft or one in review in place; a published one (a
        manager) becomes a new version; a retired one is not edited (409)."""
        session = request_session()
        article = get_article(article_id)
        lock_for_write(article)
        blp.check_etag(views(session, [article])[0], ArticleSchema)
        try:
            edit_article(session, article, body, actor_id=actor_id(), role=_role(), now=utcnow())
        except KbRefused as refused:
            session.rollback()
            _refused(refused)
        result = views(session, [article])[0]
        session.commit()
        return result


@blp.route("/kb/articles/<uuid:article_id>/transitions")
class ArticleTransitions(MethodView):
    @require("write")
    @blp.etag
    @blp.arguments(KbTransitionSchema())
    @blp.response(200, ArticleSchema)
    def post(self, body, article_id):
        """Move the article on (needs If-Match): ``submit`` (any writer), ``return``,
        ``publish``, ``review`` (still right: its review clock starts again), ``retire``
        (managers)."""
        session = request_session()
        article = get_article(article_id)
        # flask-smorest checks If-Match on PUT/PATCH/DELETE only: a transition is a POST.
        blp.check_if_match(article, lambda: ArticleSchema().dump(views(session, [article])[0]),
                           what="the article")
        try:
            transition(session, article, body["action"], actor_id=actor_id(), role=_role(), now=utcnow())
        except KbRefused as refused:
            session.rollback()
            _refused(refused)
        result = views(session, [article])[0]
        session.commit()
        return result


@blp.route("/kb/articles/<uuid:article_id>/versions")
class ArticleVersions(MethodView):
    @require("read")
    @blp.arguments(PageArgs(), location="query")
    @blp.response(200, KbVersionSchema(many=True), headers=PAGINATION_HEADER_DOC)
    def get(self, args, article_id):
        """The article's versions, newest first."""
        article = get_article(article_id)
        headers: dict = {}
        rows = paginate(request_session(), select(KbArticleVersion).where(KbArticleVersion.article_id == article.id)
                        .order_by(KbArticleVersion.version.desc()), args, headers)
        return rows, 200, headers


@blp.route("/kb/articles/<uuid:article_id>/versions/<version>")
class ArticleVersion(MethodView):
    @require("read")
    @blp.response(200, KbVersionSchema)
    def get(self, article_id, version):
        """One version of the article (what a link pinned)."""
        # A plain path segment (not <int:>), so that authentication answers first.
        if not version.isdigit() or not 0 < int(version) < 2**31:
            abort(404, message=f"The article has no version {version!r}.")
        version = int(version)
        article = get_article(article_id)
        row = request_session().scalar(select(KbArticleVersion).where(
            KbArticleVersion.article_id == article.id, KbArticleVersion.version == version))
        if row is None:
            abort(404, message="Version not found.")
        return row


class KbFixSchema(Schema):
    records = fields.Integer()
    fixed_first_time = fields.Integer()
    rate = fields.Float(allow_none=True, metadata={"description": "% fixed first time"})


class KbFirstTimeFixSchema(Schema):
    with_article = fields.Nested(KbFixSchema)
    without_article = fields.Nested(KbFixSchema)


class KbKindStatsSchema(Schema):
    kind = fields.String()
    resolved = fields.Integer()
    linked = fields.Integer()
    link_rate = fields.Float(allow_none=True)
    first_time_fix = fields.Nested(KbFirstTimeFixSchema)


class KbArticleCountsSchema(Schema):
    created = fields.Integer()
    from_records = fields.Integer()
    from_records_with_no_link_before = fields.Integer()
    published = fields.Integer()
    stale = fields.Integer(metadata={"description": "Published, review overdue (now)"})


class KbStatsSchema(Schema):
    since = fields.AwareDateTime()
    until = fields.AwareDateTime()
    resolved = fields.Integer(metadata={"description": "Records in a final state of their workflow"})
    linked = fields.Integer()
    link_rate = fields.Float(allow_none=True, metadata={"description": "% of resolved records linked"})
    first_time_fix = fields.Nested(KbFirstTimeFixSchema)
    kinds = fields.List(fields.Nested(KbKindStatsSchema))
    articles = fields.Nested(KbArticleCountsSchema)


@blp.route("/kb/stats")
class KbStats(MethodView):
    @require("manage")
    @blp.arguments(KbStatsQuery(), location="query")
    @blp.response(200, KbStatsSchema)
    def get(self, args):
        """Link rate and first-time fix (with and without an article) of the records that
        occurred in ``[since, until)`` (at most 366 days) and are resolved, articles
        created (from records) in it, and stale articles now."""
        since, until = args["since"], args["until"]
        if since >= until or until - since > timedelta(days=366):
            abort(422, message="'since' must be before 'until', at most 366 days apart.",
                  errors={"query": {"since": ["Out of range."]}})
        finals = {name: tuple(kind.workflow.final) if kind.workflow else ()
                  for name, kind in enabled_kinds().items()}
        return stats(request_session(), finals, since, until, utcnow())
