"""The close's approval request (``[rafay_billing] close_approval = required``): an Airflow 3.3
``HITLOperator`` in the UI's Required Actions.

Why a subclass: a period that was already closed has nothing to approve, so the request is not raised
(the task succeeds at once and the next task finds the issued documents); otherwise it is the stock
operator, waiting in ``awaiting_input`` until a person answers or the response timeout takes the
default, Reject. The decision is acted on by the next task (``issue_invoices``,
:func:`rafay_provider.close_pipeline.issue_approved`): a Reject by itself only ends this task.
Imported at DAG parse time only when approval is required.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk import Param

from rafay_provider import settings

APPROVE = "Approve"
REJECT = "Reject"
DRAFT_TASK = "draft_invoices"
SUBJECT = "Approve the invoices of {{ ti.xcom_pull(task_ids='" + DRAFT_TASK + "')['period'] }}"
BODY = "{{ ti.xcom_pull(task_ids='" + DRAFT_TASK + "').get('body', 'Already closed: nothing to approve.') }}"


def approval_params() -> dict[str, Param]:
    """The form's fields: a ``comment`` (passed as the task's ``params``, so Airflow marks them the task's own
    and the request shows them, not the DAG's)."""
    return {"comment": Param("", type="string", title="Comment",
                             description="Why you approve or reject (a Reject fails the close with it)")}


class CloseApprovalOperator(HITLOperator):
    """Approve / Reject the period's drafts, with a ``comment`` (``params=approval_params()``); assigned users
    and the response timeout from ``[rafay_billing]``; Reject is the default taken on timeout."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("subject", SUBJECT)
        kwargs.setdefault("body", BODY)
        super().__init__(
            options=[APPROVE, REJECT],
            defaults=[REJECT],
            multiple=False,
            assigned_users=settings.approval_assigned_users() or None,  # type: ignore[arg-type]
            response_timeout=settings.approval_timeout(),
            **kwargs,
        )

    def execute(self, context: Any) -> Any:
        drafted = context["ti"].xcom_pull(task_ids=DRAFT_TASK) or {}
        if drafted.get("already_closed"):
            self.log.info("Period %s was already closed: nothing to approve.", drafted.get("period"))
            return None
        return super().execute(context)
