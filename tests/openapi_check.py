#!/usr/bin/python3
"""Checks JSON values against the Prime Intellect API's OpenAPI description.

The fake API (tests/fake_api.py) uses this at run time to refuse request
bodies the real server would refuse, and (with --check-responses) to make
sure its own answers are ones the real server could give; the tests use the
same code.  It implements the subset of JSON Schema the description uses:
$ref (into components), type, properties, required, additionalProperties,
enum, const, items, anyOf/oneOf, minimum/maximum/exclusiveMinimum,
maxLength and format date-time.  Standard library plus python3-yaml.
"""

import re
from pathlib import Path

import yaml

# A copy of /work/shared/api/openapi (see its README.md).
SPEC_DIR = Path(__file__).resolve().parent / "openapi"
SPEC_FILES = ("compute.yml", "billing.yml")
METHODS = ("get", "post", "put", "patch", "delete")

_DATE_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?$")


def _type_ok(typ, value, lax):
    if typ == "null":
        return value is None
    if typ == "boolean":
        return isinstance(value, bool)
    if typ == "string":
        return isinstance(value, str)
    if typ == "object":
        return isinstance(value, dict)
    if typ == "array":
        return isinstance(value, list)
    if isinstance(value, bool):
        return False
    if typ == "integer":
        if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
            return True
        return lax and isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value) is not None
    if typ == "number":
        if isinstance(value, (int, float)):
            return True
        if lax and isinstance(value, str):
            try:
                float(value)
                return True
            except ValueError:
                return False
        return False
    raise ValueError("unknown schema type %r" % typ)


def _num(value):
    return float(value) if isinstance(value, str) else value


class Operation:
    """One documented (method, path template) of one spec file."""

    def __init__(self, spec, doc, method, template, op):
        self.spec, self.doc, self.method, self.template, self.op = spec, doc, method, template, op
        self.params = {p["name"]: p for p in op.get("parameters", []) if p["in"] == "query"}
        content = (op.get("requestBody") or {}).get("content", {}).get("application/json")
        self.body_schema = content["schema"] if content else None
        self.body_required = bool((op.get("requestBody") or {}).get("required"))

    def response_schema(self, status):
        """(declared, schema): declared is False for a status the operation
        does not document; schema is None when it has no JSON body."""
        resp = self.op.get("responses", {}).get(str(status))
        if resp is None:
            return False, None
        content = (resp.get("content") or {}).get("application/json")
        return True, (content or {}).get("schema")

    def check_body(self, body, lax=True):
        return self.spec.validate(self.body_schema, body, self.doc, ("body",), lax=lax)

    def check_query(self, query, lax=True):
        """query: {name: [values]} (parse_qs).  Returns (errors, unknown names)."""
        errors = []
        for name, values in query.items():
            p = self.params.get(name)
            if p is None:
                continue
            schema = p.get("schema", {})
            if self.spec.accepts(schema, [], self.doc):
                value = values
            else:
                value = values[-1]
            errors += self.spec.validate(schema, value, self.doc, ("query", name), lax=lax)
        unknown = sorted(n for n in query if n not in self.params)
        return errors, unknown

    def check_response(self, status, body):
        """Problems with an answer of this operation, as 'loc: msg' lines."""
        declared, schema = self.response_schema(status)
        if not declared or schema is None:
            # Undocumented statuses (400, 401, 402, 404, 429, 5xx) carry
            # the FastAPI error shape the recorded clients read.
            if status == 204 and body is None:
                return []
            if isinstance(body, dict) and "detail" in body:
                return []
            return ["response %s: not an object with 'detail'" % status]
        return self.spec.validate(schema, body, self.doc, ("response",))


class Spec:
    """The loaded description files; each file's $refs stay inside it."""

    def __init__(self, spec_dir=SPEC_DIR, files=SPEC_FILES):
        self.docs = [yaml.safe_load((Path(spec_dir) / f).read_text()) for f in files]
        self.ops = []
        for doc in self.docs:
            for template, item in doc["paths"].items():
                for method, op in item.items():
                    if method in METHODS:
                        self.ops.append(Operation(self, doc, method.upper(), template, op))
        self.paths = {op.template for op in self.ops}

    # -- paths -----------------------------------------------------------

    @staticmethod
    def _match(template, path):
        t, p = template.split("/"), path.split("/")
        if len(t) != len(p):
            return None
        params = {}
        for ts, ps in zip(t, p):
            if ts.startswith("{") and ts.endswith("}"):
                if not ps:
                    return None
                params[ts[1:-1]] = ps
            elif ts != ps:
                return None
        return params

    def route(self, path):
        """The documented template a path matches (literal segments win over
        {params}), with its path parameters; (None, None) when none does."""
        best = None
        for template in self.paths:
            params = self._match(template, path)
            if params is not None and (best is None or len(params) < len(best[1])):
                best = (template, params)
        return best or (None, None)

    def operation(self, method, template):
        for op in self.ops:
            if op.template == template and op.method == method:
                return op
        return None

    def methods(self, template):
        return {op.method for op in self.ops if op.template == template}

    def schema(self, name, doc=None):
        for d in ([doc] if doc else self.docs):
            s = d["components"]["schemas"].get(name)
            if s is not None:
                return s
        raise KeyError(name)

    # -- validation ------------------------------------------------------

    def _resolve(self, schema, doc):
        while "$ref" in schema:
            ref = schema["$ref"]
            if not ref.startswith("#/components/schemas/"):
                raise ValueError("unsupported $ref %r" % ref)
            schema = self.schema(ref.rsplit("/", 1)[1], doc)
        return schema

    def accepts(self, schema, value, doc, lax=False):
        return not self.validate(schema, value, doc, (), lax=lax)

    def validate(self, schema, value, doc, loc=(), lax=False):
        """Every problem of value against schema, as 'a.b.c: message'
        strings (empty when it conforms).  lax: also accept numbers given
        as strings where a number is expected, as pydantic's lax mode does
        for request data."""
        out = []
        self._validate(schema, value, doc, list(loc), lax, out)
        return out

    def _validate(self, schema, value, doc, loc, lax, out):
        if schema is None or schema is True or schema == {}:
            return
        schema = self._resolve(schema, doc)
        where = ".".join(str(x) for x in loc) or "(root)"

        for key in ("anyOf", "oneOf"):
            if key in schema:
                branches = schema[key]
                results = [self.validate(b, value, doc, loc, lax) for b in branches]
                fits = sum(1 for r in results if not r)
                if fits == 0 or (key == "oneOf" and fits > 1):
                    # the problems of the branch of the right type, if any
                    def wrong_type(r):
                        return any(e.startswith(where + ": ") and " expected, got " in e
                                   for e in r)
                    best = min(results, key=lambda r: (wrong_type(r), len(r)))
                    out.append("%s: matches no allowed form (%s)" % (where, "; ".join(best)))
                    return
        if "const" in schema and value != schema["const"]:
            out.append("%s: must be %r, not %r" % (where, schema["const"], value))
            return
        if "enum" in schema and value not in schema["enum"]:
            out.append("%s: %r is not one of the allowed values" % (where, value))
            return
        typ = schema.get("type")
        if typ is not None:
            types = typ if isinstance(typ, list) else [typ]
            if not any(_type_ok(t, value, lax) for t in types):
                out.append("%s: %s expected, got %s" % (where, "/".join(types),
                                                         type(value).__name__ if value is not None
                                                         else "null"))
                return
        if isinstance(value, (int, float, str)) and not isinstance(value, bool) and \
                typ in ("integer", "number"):
            v = _num(value)
            if "minimum" in schema and v < schema["minimum"]:
                out.append("%s: must be >= %s" % (where, schema["minimum"]))
            if "maximum" in schema and v > schema["maximum"]:
                out.append("%s: must be <= %s" % (where, schema["maximum"]))
            if "exclusiveMinimum" in schema and v <= schema["exclusiveMinimum"]:
                out.append("%s: must be > %s" % (where, schema["exclusiveMinimum"]))
        if isinstance(value, str):
            if "maxLength" in schema and len(value) > schema["maxLength"]:
                out.append("%s: longer than %d" % (where, schema["maxLength"]))
            if schema.get("format") == "date-time" and not _DATE_TIME.match(value):
                out.append("%s: %r is not a date-time" % (where, value))
        if isinstance(value, dict):
            props = schema.get("properties", {})
            for name in schema.get("required", []):
                if name not in value:
                    out.append("%s: field required" % ".".join(str(x) for x in loc + [name]))
            extra = schema.get("additionalProperties", True)
            for name, v in value.items():
                if name in props:
                    self._validate(props[name], v, doc, loc + [name], lax, out)
                elif extra is False:
                    out.append("%s: extra field not permitted" % ".".join(str(x) for x in loc + [name]))
                elif isinstance(extra, dict):
                    self._validate(extra, v, doc, loc + [name], lax, out)
        if isinstance(value, list) and "items" in schema:
            for i, v in enumerate(value):
                self._validate(schema["items"], v, doc, loc + [i], lax, out)


def error_response(problems):
    """The 422 body the description documents (ErrorResponse):
    {"errors": [{"param": "pod.cloudId", "details": "field required"}]}."""
    errors = []
    for p in problems:
        param, _, details = p.partition(": ")
        parts = param.split(".")
        if parts and parts[0] in ("body", "query"):
            parts = parts[1:]
        errors.append({"param": ".".join(parts) or "body", "details": details})
    return {"errors": errors}


_SPEC = None


def load(spec_dir=SPEC_DIR):
    """The description, loaded once per process."""
    global _SPEC
    if _SPEC is None:
        _SPEC = Spec(spec_dir)
    return _SPEC

