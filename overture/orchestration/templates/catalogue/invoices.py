"""Finance: invoice processing. An email with an invoice comes in; the "Invoice
extractor" reads its fields, the purchase order it cites is fetched from the accounting
system and matched (supplier and total within the tolerance), an invoice above the
approval threshold waits for a finance admin, and the bill is posted to accounting. An
invoice that matches no purchase order is held and the accounts-payable team is told.

Patterns: sequential, agent extraction, transform and condition (PO match), human
approval above a threshold, actions.
"""

from __future__ import annotations

from overture.orchestration.templates.catalogue import (
    UseCase,
    agent,
    collection,
    http_connection,
    outbox,
)

ACCOUNTING, OUTBOX, POLICY = "Accounting", "Finance outbox", "AP policy"
EXTRACTOR = "Invoice extractor"
APPROVAL_THRESHOLD = 5000  # in the invoice's currency; above it a finance admin approves
TOLERANCE = 1  # a total may differ from its purchase order by this much (rounding)
AP_TEAM = "ap@finance.example.com"

POLICY_DOCS = [
    ("Three-way match", f"""\
Every supplier invoice cites a purchase order. We pay it when the supplier is the one on \
the purchase order and the total matches the order within {TOLERANCE} unit of currency. \
Anything else is held and accounts payable asks the supplier for a corrected invoice."""),
    ("Approval limits", f"""\
Invoices up to {APPROVAL_THRESHOLD} are posted automatically once matched. Above \
{APPROVAL_THRESHOLD} a finance admin approves before the bill is posted; they may correct \
the due date. Rejected invoices are returned to the supplier."""),
]

# The `local` extractor reads the fields of the invoice attached to the email (its
# e-invoice data); a real model reads them from the email's text as well.
EXTRACTOR_TEMPLATE = (
    "{{ {'invoice_number': input.invoice.number, 'supplier': input.invoice.supplier, "
    "'po_number': input.invoice.po_number, 'total': input.invoice.total, "
    "'currency': input.invoice.currency, 'due_date': input.invoice.due_date} }}")

AGENTS = [
    agent(EXTRACTOR, "Extracts the fields of a supplier invoice from its email.",
          "accounts-payable clerk: extracts invoice number, supplier, PO number, total, "
          "currency and due date from an invoice email; answers them as JSON",
          instructions=EXTRACTOR_TEMPLATE),
]

INPUT_SCHEMA = {
    "type": "object", "required": ["from", "subject", "body", "invoice"],
    "properties": {
        "from": {"type": "string", "format": "email", "title": "From"},
        "subject": {"type": "string", "title": "Subject"},
        "body": {"type": "string", "title": "Email text", "maxLength": 20000},
        "invoice": {"type": "object", "title": "Attached invoice (e-invoice data)"}}}

INVOICE = "steps.extract.output"
STEPS = [
    {"id": "extract", "type": "agent", "agent": EXTRACTOR,
     "task": "Extract the invoice's fields from this email.",
     "input": {"from": "{{ input.from }}", "subject": "{{ input.subject }}",
               "body": "{{ input.body }}", "invoice": "{{ input.invoice }}"},
     "next": "purchase_order"},
    {"id": "purchase_order", "type": "action", "action": "http.request",
     "connection": f"@connection:{ACCOUNTING}",
     "input": {"method": "GET", "url": f"/purchase-orders/{{{{ {INVOICE}.po_number }}}}",
               "allow_client_errors": True},
     "retry": {"max_attempts": 3, "backoff_seconds": 1}, "next": "match"},
    {"id": "match", "type": "transform", "output": {
        "po_found": "{{ steps.purchase_order.status == 200 }}",
        "matched": "{{ steps.purchase_order.status == 200 && "
                   f"steps.purchase_order.body.supplier == {INVOICE}.supplier && "
                   f"double(steps.purchase_order.body.amount) - double({INVOICE}.total) "
                   f"<= {TOLERANCE}.0 && double({INVOICE}.total) - "
                   f"double(steps.purchase_order.body.amount) <= {TOLERANCE}.0 }}}}"},
     "next": "matched"},
    {"id": "matched", "type": "condition", "if": "steps.match.matched",
     "then": "threshold", "else": "hold"},
    {"id": "threshold", "type": "condition",
     "if": f"double({INVOICE}.total) > {APPROVAL_THRESHOLD}.0",
     "then": "approve", "else": "post"},
    {"id": "approve", "type": "approval",
     "prompt": f"Invoice {{{{ {INVOICE}.invoice_number }}}} from {{{{ {INVOICE}.supplier }}}}"
               f" for {{{{ {INVOICE}.total }}}} {{{{ {INVOICE}.currency }}}} is above "
               f"{APPROVAL_THRESHOLD}: approve posting it?",
     "data": {"invoice": f"{{{{ {INVOICE}.invoice_number }}}}",
              "supplier": f"{{{{ {INVOICE}.supplier }}}}",
              "po_number": f"{{{{ {INVOICE}.po_number }}}}",
              "total": f"{{{{ {INVOICE}.total }}}}", "currency": f"{{{{ {INVOICE}.currency }}}}",
              "due_date": f"{{{{ {INVOICE}.due_date }}}}"},
     "editable": ["due_date"], "assignee": {"role": "admin"},
     "on_reject": "rejected", "next": "post"},
    {"id": "post", "type": "action", "action": "http.request",
     "connection": f"@connection:{ACCOUNTING}",
     "input": {"method": "POST", "url": "/bills", "json": {
         "invoice_number": f"{{{{ {INVOICE}.invoice_number }}}}",
         "supplier": f"{{{{ {INVOICE}.supplier }}}}", "po_number": f"{{{{ {INVOICE}.po_number }}}}",
         "total": f"{{{{ {INVOICE}.total }}}}", "currency": f"{{{{ {INVOICE}.currency }}}}",
         "due_date": f"{{{{ has(steps.approve) ? steps.approve.data.due_date : "
                     f"{INVOICE}.due_date }}}}"}},
     "retry": {"max_attempts": 3, "backoff_seconds": 1}, "next": "posted"},
    {"id": "posted", "type": "transform", "output": {
        "status": "posted", "bill": "{{ steps.post.body.id }}",
        "invoice": f"{{{{ {INVOICE}.invoice_number }}}}", "total": f"{{{{ {INVOICE}.total }}}}",
        "approval": "{{ has(steps.approve) ? steps.approve.decision : 'not needed' }}"}},
    {"id": "hold", "type": "action", "action": "demo_outbox.send_email",
     "connection": f"@connection:{OUTBOX}",
     "input": {"to": [AP_TEAM], "subject": f"On hold: invoice {{{{ {INVOICE}.invoice_number }}}}",
               "text": f"Invoice {{{{ {INVOICE}.invoice_number }}}} from "
                       f"{{{{ {INVOICE}.supplier }}}} does not match purchase order "
                       f"{{{{ {INVOICE}.po_number }}}}. Ask {{{{ input.from }}}} for a "
                       "corrected invoice.", "from_name": "Invoice processing"},
     "next": "on_hold"},
    {"id": "on_hold", "type": "stop", "output": {
        "status": "on_hold", "invoice": f"{{{{ {INVOICE}.invoice_number }}}}",
        "reason": "{{ steps.match.po_found ? 'does not match its purchase order' "
                  ": 'no such purchase order' }}"}},
    {"id": "rejected", "type": "stop", "output": {
        "status": "rejected", "invoice": f"{{{{ {INVOICE}.invoice_number }}}}"}},
]


def _invoice(number: str, total: str, po: str) -> dict[str, object]:
    return {"number": number, "supplier": "Northwind Traders", "po_number": po,
            "total": total, "currency": "EUR", "due_date": "2027-01-15"}


USE_CASE = UseCase(
    key="invoice-processing", name="Finance: invoice processing",
    summary="An emailed invoice is extracted, matched to its purchase order, approved "
            "above a threshold and posted to accounting; mismatches are held.",
    patterns=("sequential", "agent extraction", "transform + condition", "approval",
              "actions"),
    knowledge=[collection(POLICY, "Accounts-payable rules: matching and approval limits.",
                          POLICY_DOCS)],
    connections=[http_connection(ACCOUNTING, "https://accounting.example.com/api"),
                 outbox(OUTBOX)],
    agents=AGENTS,
    workflow={"name": "Invoice intake", "description": "Extract, match, approve above "
              f"{APPROVAL_THRESHOLD} and post a supplier invoice to accounting.",
              "definition": {"input_schema": INPUT_SCHEMA, "steps": STEPS}},
    samples={
        "above_threshold": {
            "from": "billing@northwind-traders.example", "subject": "Invoice NT-7781",
            "body": "Please find attached invoice NT-7781 for PO-3100, due 15 January.",
            "invoice": _invoice("NT-7781", "12400.00", "PO-3100")},
        "below_threshold": {
            "from": "billing@northwind-traders.example", "subject": "Invoice NT-7790",
            "body": "Attached: invoice NT-7790 for PO-3105 (office supplies).",
            "invoice": _invoice("NT-7790", "480.00", "PO-3105")},
        "no_match": {
            "from": "billing@northwind-traders.example", "subject": "Invoice NT-7795",
            "body": "Attached: invoice NT-7795 for PO-9999.",
            "invoice": _invoice("NT-7795", "75.00", "PO-9999")},
    },
)
