"""The options of a write, checked as the REST handlers check them before the registry runs.

Mirrors ``k8s.io/apimachinery/pkg/apis/meta/v1/validation`` (v0.35.0), called by
``endpoints/handlers`` (``create.go``, ``update.go``, ``patch.go``, ``delete.go``):

- ``ValidateDryRun``: ``dryRun`` may only be ``All``, else 422 on the options kind
  (``CreateOptions.meta.k8s.io "" is invalid: dryRun: Unsupported value: ...``);
- ``ValidateDeleteOptions``: ``propagationPolicy`` is ``Foreground``, ``Background`` or
  ``Orphan`` (``"nil"`` is listed as the fourth supported value, as upstream lists it), and may
  not be given together with the older ``orphanDependents``;
- ``fieldManager`` is at most 128 characters (``ValidateFieldManager``); ``force`` is for apply
  patches only (``ValidatePatchOptions``: ``force: Forbidden: may not be specified for
  non-apply patch``) and apply patches need a ``fieldManager`` (``is required for apply
  patch``: kubectl defaults it to ``kubectl``, controllers must set it).
"""

from __future__ import annotations

from typing import Any

from k8sbook.api import validation
from k8sbook.core.status import invalid

OPTIONS_KIND = {"create": "CreateOptions", "update": "UpdateOptions", "patch": "PatchOptions",
                "delete": "DeleteOptions", "deletecollection": "DeleteOptions"}
PROPAGATION_POLICIES = ("Foreground", "Background", "Orphan")
APPLY_PATCH = "application/apply-patch+yaml"


def _invalid(verb: str, causes: list[dict[str, str]]) -> Exception:
    return invalid(OPTIONS_KIND.get(verb, "CreateOptions"), "meta.k8s.io", "", causes)


def dry_run(verb: str, params: dict[str, Any]) -> bool:
    """Whether the request is a dry run; 422 for a value other than ``All``."""
    values = params.get("dryRun")
    if not values:
        return False
    values = [values] if isinstance(values, str) else list(values)
    if any(v != "All" for v in values):
        raise _invalid(verb, [validation.not_supported("dryRun", values, ["All"])])
    return True


def check_write_options(verb: str, params: dict[str, Any], content_type: str = "") -> None:
    """``ValidateCreateOptions`` / ``ValidateUpdateOptions`` / ``ValidatePatchOptions`` /
    ``ValidateDeleteOptions`` on the request's parameters."""
    causes: list[dict[str, str]] = []
    manager = params.get("fieldManager")
    if manager is not None and len(str(manager)) > 128:
        causes.append(validation.too_long("fieldManager", 128))
    if verb == "patch":
        if content_type == APPLY_PATCH and not manager:
            causes.append(validation.required(
                "fieldManager", "is required for apply patch"))
        if params.get("force") is not None and content_type != APPLY_PATCH:
            causes.append(validation.forbidden("force", "may not be specified for non-apply "
                                                        "patch"))
    if verb in ("delete", "deletecollection"):
        policy = params.get("propagationPolicy")
        if policy is not None and params.get("orphanDependents") is not None:
            causes.append(validation.invalid("propagationPolicy", policy, "orphanDependents "
                                             "and deletionPropagation cannot be both set"))
        if policy is not None and policy not in PROPAGATION_POLICIES:
            causes.append(validation.not_supported("propagationPolicy", policy,
                                                   [*PROPAGATION_POLICIES, "nil"]))
    if causes:
        raise _invalid(verb, causes)
    dry_run(verb, params)
