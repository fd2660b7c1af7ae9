"""Phrase libraries: the lists of phrases shipped with servq (the taboo language) that a
``phrases`` rule forbids by reference (``"@taboo"``, ``"@taboo.impatient"``)."""

from __future__ import annotations

from flask.views import MethodView
from marshmallow import Schema, fields

from servq.core.api.blueprint import Blueprint
from servq.core.api.context import require
from servq.core.scoring.phrases import libraries

URL = "/phrase-libraries"
blp = Blueprint("phrase_libraries", __name__,
                description="Phrase libraries a standard's phrases rule may forbid by reference.")


class PhraseTitleSchema(Schema):
    en = fields.String()
    zh = fields.String()


class LibraryKindSchema(Schema):
    title = fields.Nested(PhraseTitleSchema)
    reference = fields.String(metadata={"description": "What a rule writes in `forbidden`: `@lib.kind`"})
    phrases = fields.List(fields.String())


class ReviewOnlySchema(Schema):
    title = fields.Nested(PhraseTitleSchema)
    hint = fields.Nested(PhraseTitleSchema)
    phrases = fields.List(fields.String(), metadata={
        "description": "Words a reviewer judges in context (a `check` item), never matched blindly"})


class PhraseLibrarySchema(Schema):
    name = fields.String()
    reference = fields.String(metadata={"description": "`@name`: every kind of the library"})
    title = fields.Nested(PhraseTitleSchema)
    source = fields.String()
    kinds = fields.Dict(keys=fields.String(), values=fields.Nested(LibraryKindSchema))
    review_only = fields.Nested(ReviewOnlySchema, allow_none=True)


def describe(name: str, library: dict) -> dict:
    return {"name": name, "reference": f"@{name}", "title": library.get("title"),
            "source": library.get("source", ""),
            "kinds": {kind: {"title": spec.get("title"), "reference": f"@{name}.{kind}",
                             "phrases": list(spec["phrases"])}
                      for kind, spec in library.get("kinds", {}).items()},
            "review_only": library.get("review_only")}


@blp.route("")
class PhraseLibraries(MethodView):
    @require("read")
    @blp.response(200, PhraseLibrarySchema(many=True))
    def get(self):
        """List the phrase libraries, by name (a short list: unpaginated)."""
        return [describe(name, library) for name, library in sorted(libraries().items())]
