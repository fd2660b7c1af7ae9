"""The record's life: ONE write pipeline, used by ``POST /records``, a change, a workflow
transition, ``POST /records/batch``, ``servq records import`` and a re-score alike.

The order of its steps is this package's: validate (:func:`.pipeline.prepare_record`)
→ write the record with its audit event (:mod:`.pipeline` for one record,
:func:`.ingest.insert_records` for a chunk) → ``record_created`` / ``record_changed`` →
score → store the evaluations → corrective actions → deadline clocks → KPI marks →
``record_evaluated`` (:func:`.evaluate.evaluate_records`). What differs between one
record and a million is the writer handed to each step (:data:`servq.core.db.fast.WRITER`
or a :class:`servq.core.db.fast.BulkWriter`), not flags. :mod:`servq.core.evaluation`
scores and stores and starts no effect itself.

Modules: :mod:`.pipeline` (validation, create, change, delete), :mod:`.evaluate` (the
scoring step and its effects), :mod:`.workflows` (transitions), :mod:`.ingest` (the
chunk loop of the import and the batch) and :mod:`.formats` (its file formats),
:mod:`.rescore` (the ``standards.rescore`` job), :mod:`.kinds` (core's own kinds).
"""
