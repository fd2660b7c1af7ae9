"""A record's side of the knowledge base: ``/api/v1/records/<id>/kb-suggestions`` and
``/api/v1/records/<id>/kb-links``.

Suggestions are the published articles that fit the record (its kind, product, category
and text: :mod:`servq.core.kb.suggest`), best first. A link (``POST …/kb-links
{article_id}``) pins the article's published version; ``DELETE
…/kb-links/<article_id>`` (If-Match) unlinks; each writes an audit event of the record,
tells the plugins (``record_changed`` with ``changes = {"kb_links": [article ids before,
after]}``: a plugin may derive a value from the record's links) and scores the record
again. See docs/knowledge-base.md.
"""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import abort
from marshmallow import Schema, fields
from sqlalchemy import select

from servq.core.api.blueprint import Blueprint, lock_for_write
from servq.core.api.context import actor_id, enabled_kinds, require
from servq.core.api.kb import ArticleSchema, get_article, views
from servq.core.api.pagination import PAGINATION_HEADER_DOC, PageArgs, paginate
from servq.core.api.records import get_record, invalid_as_422
from servq.core.db import utcnow
from servq.core.db.session import request_session
from servq.core.kb import KbRefused, link, suggestions, unlink
from servq.core.models import KbArticle, KbArticleVersion, KbLink
from servq.core.plugins.app import hooks_for_session
from servq.core.records.evaluate import evaluate_record

URL = ""
blp = Blueprint("kb_records", __name__, description="A record's knowledge-base suggestions and links.")


class KbSuggestionSchema(ArticleSchema):
    score = fields.Integer(required=True, metadata={
        "description": "3 same product, 2 same category, 1 per shared word or two-character piece"})


class KbLinkInputSchema(Schema):
    article_id = fields.UUID(required=True)


class KbLinkSchema(Schema):
    id = fields.UUID(required=True)
    record_id = fields.UUID(required=True)
    article_id = fields.UUID(required=True)
    version = fields.Integer(required=True, metadata={"description": "The article's version used (pinned)"})
    code = fields.String(required=True)
    title = fields.Dict(required=True, metadata={"description": "The pinned version's title"})
    created_by = fields.UUID(allow_none=True)
    created_at = fields.AwareDateTime(required=True)


def _link_views(session, rows: list[KbLink]) -> list[dict]:
    if not rows:
        return []
    found = session.execute(
        select(KbArticleVersion.article_id, KbArticleVersion.version, KbArticleVersion.title, KbArticle.code)
        .join(KbArticle, KbArticle.id == KbArticleVersion.article_id)
        .where(KbArticleVersion.article_id.in_({r.article_id for r in rows}))
        .where(KbArticleVersion.version.in_({r.version for r in rows}))).all()
    titles = {(a, v): (title, code) for a, v, title, code in found}
    return [{"id": r.id, "record_id": r.record_id, "article_id": r.article_id, "version": r.version,
             "code": titles[(r.article_id, r.version)][1], "title": titles[(r.article_id, r.version)][0],
             "created_by": r.created_by, "created_at": r.created_at} for r in rows]


def _linked_ids(session, record) -> list[str]:
    return [str(i) for i in session.scalars(select(KbLink.article_id).where(KbLink.record_id == record.id)
                                            .order_by(KbLink.created_at, KbLink.id))]


def _links_changed(session, record, before: list[str]) -> None:
    """Tell the plugins the record's links changed, then score it again (a plugin may
    derive a scored value from the links, as the after-sales ticket's ``kb_linked``)."""
    hooks_for_session(session).record_changed(
        session=session, record=record, changes={"kb_links": [before, _linked_ids(session, record)]},
        actor_id=actor_id())
    evaluate_record(session, record, now=utcnow())


@blp.route("/records/<uuid:record_id>/kb-suggestions")
class RecordSuggestions(MethodView):
    @require("read")
    @blp.arguments(PageArgs(), location="query")
    @blp.response(200, KbSuggestionSchema(many=True), headers=PAGINATION_HEADER_DOC)
    def get(self, args, record_id):
        """Published articles for this record, best first (see the score)."""
        session = request_session()
        kinds = enabled_kinds()
        record = get_record(record_id, kinds)
        score, stmt = suggestions(record, kinds.get(record.kind))
        headers: dict = {}
        articles = paginate(session, stmt, args, headers)
        if not articles:
            return [], 200, headers
        scores = dict(session.execute(select(KbArticle.id, score).join(
            KbArticleVersion, (KbArticleVersion.article_id == KbArticle.id)
            & (KbArticleVersion.version == KbArticle.published_version))
            .where(KbArticle.id.in_([a.id for a in articles]))).all())
        return [{**v, "score": int(scores[v["id"]])} for v in views(session, articles)], 200, headers


def _get_link(record, article_id) -> KbLink:
    row = request_session().scalar(select(KbLink).where(KbLink.record_id == record.id,
                                                        KbLink.article_id == article_id))
    if row is None:
        abort(404, message="The record is not linked to this article.")
    return row


@blp.route("/records/<uuid:record_id>/kb-links")
class RecordLinks(MethodView):
    @require("read")
    @blp.arguments(PageArgs(), location="query")
    @blp.response(200, KbLinkSchema(many=True), headers=PAGINATION_HEADER_DOC)
    def get(self, args, record_id):
        """The articles this record is linked to, each with the version used, oldest first."""
        session = request_session()
        record = get_record(record_id, enabled_kinds())
        headers: dict = {}
        rows = paginate(session, select(KbLink).where(KbLink.record_id == record.id)
                        .order_by(KbLink.created_at, KbLink.id), args, headers)
        return _link_views(session, rows), 200, headers

    @require("write")
    @blp.arguments(KbLinkInputSchema())
    @blp.created(KbLinkSchema, key="article_id")
    def post(self, body, record_id):
        """Link a published article (pins its published version). 404 for an article that
        is not yours; 409 when it is not published or linked already."""
        session = request_session()
        record = get_record(record_id, enabled_kinds())
        article = get_article(body["article_id"])
        lock_for_write(record)
        before = _linked_ids(session, record)
        try:
            row = link(session, record, article, actor_id=actor_id(), now=utcnow())
        except KbRefused as refused:
            session.rollback()
            abort(refused.status, message=refused.message)
        result = _link_views(session, [row])[0]
        with invalid_as_422():
            _links_changed(session, record, before)
        session.commit()
        return result


@blp.route("/records/<uuid:record_id>/kb-links/<uuid:article_id>")
class RecordLink(MethodView):
    @require("read")
    @blp.etag
    @blp.response(200, KbLinkSchema)
    def get(self, record_id, article_id):
        """One link of the record."""
        record = get_record(record_id, enabled_kinds())
        return _link_views(request_session(), [_get_link(record, article_id)])[0]

    @require("write")
    @blp.etag
    @blp.response(204)
    def delete(self, record_id, article_id):
        """Unlink (needs If-Match)."""
        session = request_session()
        record = get_record(record_id, enabled_kinds())
        row = _get_link(record, article_id)
        blp.check_etag(_link_views(session, [row])[0], KbLinkSchema)
        lock_for_write(record)
        before = _linked_ids(session, record)
        unlink(session, record, row, actor_id=actor_id())
        with invalid_as_422():
            _links_changed(session, record, before)
        session.commit()
