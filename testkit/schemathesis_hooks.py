"""
Schemathesis hooks for the API contract test (test/integration/openapi-contract.test.ts).

The OpenAPI document states every rule it can in JSON Schema. A few it can only state in words, because
JSON Schema has no keyword for them (one number no larger than another, names unique across a pipeline,
metadata's size as JSON, the syntax of Content-Disposition, a batch's setting in its query or its body but
not both) or because they depend on what exists (a document the tenant uploaded, a URL the outbound guard
lets through, a cursor the API issued). A generated request that breaks only such a rule gets the
documented 400 naming it; that answer is not a contract failure. Every other failure counts, and
schemathesis reports how many were dropped here.
"""

import re

import schemathesis
from hypothesis.internal import lambda_sources
from schemathesis.core.failures import AcceptedNegativeData
from schemathesis.specs.openapi.checks import RejectedPositiveData

# Problems that say a referenced thing does not exist or may not be reached.
STATE_PROBLEMS = {"unknown-document", "url-refused", "invalid-cursor"}
# Messages of the rules the document states in words only (src/jobs/spec.ts, src/conversations/pipeline.ts,
# src/api/routes/conversations.ts, src/api/routes/batches.ts).
WORDS_ONLY = ("must be ≥ ", "are unique", "characters as JSON", "give each setting once")


def _described_only(error):
    return error.get("path") == "headers.content-disposition" or any(m in error.get("message", "") for m in WORDS_ONLY)


def _rejected_as_documented(response):
    try:
        problem = response.json()
    except ValueError:
        return False
    if problem.get("code") in STATE_PROBLEMS:
        return True
    errors = problem.get("errors") or []
    return problem.get("code") == "invalid-request" and bool(errors) and all(_described_only(e) for e in errors)


@schemathesis.hook
def filter_failure(context, failure, case, response):
    if isinstance(failure, RejectedPositiveData) and response.status_code == 400:
        return not _rejected_as_documented(response)
    # An upload's body is text on the wire, whatever JSON type the generator drew to send as it.
    if isinstance(failure, AcceptedNegativeData) and case.operation.label == "POST /v1/documents":
        return not re.search(r"in body - (incorrect type|violates `type`)", failure.message)
    return True


def _describe_lambda_safely(describe):
    """
    Python 3.11's ast.parse can raise SystemError ("AST constructor recursion depth mismatch") in a thread
    that caught a RecursionError before; Hypothesis parses source only to label a strategy, so a label it
    cannot make must not end the run.
    """

    def description(f):
        try:
            return describe(f)
        except SystemError:
            return "lambda: <unknown>"

    return description


lambda_sources.lambda_description = _describe_lambda_safely(lambda_sources.lambda_description)
