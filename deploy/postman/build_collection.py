"""Writes the Postman collection and environment next to this file.

The webhook events are built with the sandbox's own object builders and moved along the invoice
lifecycle by ``stripe_sandbox.invoice_lifecycle``, so they are full Stripe objects of the pinned
API version in the states Stripe sends; ids, amounts and timestamps become Postman variables.
Run ``.venv/bin/python deploy/postman/build_collection.py`` after changing either.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from stripe_sandbox import invoice_lifecycle, objects, payments

HERE = Path(__file__).resolve().parent
SCHEMA = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"
Obj = dict[str, Any]

# Sentinels in the generated objects, replaced by Postman variables in the raw body. Numbers
# become bare {{var}} so the body Postman sends (and signs) is valid JSON after substitution.
NUMBERS = {"__N_AMOUNT__": "amountTotal", "__N_UNIT__": "unitAmount", "__N_NOW__": "now"}


def js(source: str) -> list[str]:
    return source.strip("\n").split("\n")


def script(listen: str, source: str) -> Obj:
    return {"listen": listen, "script": {"type": "text/javascript", "exec": js(source)}}


def url(path: str) -> Obj:
    raw = "{{baseUrl}}" + path
    return {"raw": raw, "host": ["{{baseUrl}}"], "path": [p for p in path.split("/") if p]}


def request(
    name: str,
    method: str,
    path: str,
    *,
    body: Obj | str | None = None,
    tests: str,
    prerequest: str | None = None,
    auth: bool = True,
    description: str = "",
) -> Obj:
    req: Obj = {
        "method": method,
        "header": [{"key": "Accept", "value": "application/json"}],
        "url": url(path),
        "description": description,
    }
    if body is not None:
        raw = body if isinstance(body, str) else json.dumps(body, indent=2)
        req["header"].append({"key": "Content-Type", "value": "application/json"})
        req["body"] = {"mode": "raw", "raw": raw, "options": {"raw": {"language": "json"}}}
    if not auth:
        req["auth"] = {"type": "noauth"}
    events = [script("test", tests)]
    if prerequest:
        events.insert(0, script("prerequest", prerequest))
    return {"name": name, "event": events, "request": req}


PROBLEM_TESTS = """
pm.test("is problem+json", () => {
    pm.expect(pm.response.headers.get("Content-Type")).to.include("application/problem+json");
    const problem = pm.response.json();
    pm.expect(problem.status).to.eql(pm.response.code);
    pm.expect(problem.title).to.be.a("string");
});
"""


def flow() -> list[Obj]:
    basket = {"items": [{"product_id": "{{productId}}", "quantity": 2}]}
    return [
        request(
            "Register",
            "POST",
            "/api/v1/auth/register",
            auth=False,
            body={"email": "{{userEmail}}", "password": "{{userPassword}}", "name": "Postman"},
            prerequest="""
// A fresh user and fresh Stripe-side ids for every run.
const runId = Date.now().toString(36) + Math.random().toString(36).slice(2, 8);
pm.collectionVariables.set("runId", runId);
pm.collectionVariables.set("userEmail", "postman-" + runId + "@example.com");
pm.collectionVariables.set("invoicePaidId", "in_postman" + runId + "paid");
pm.collectionVariables.set("invoiceVoidId", "in_postman" + runId + "void");
""",
            tests="""
pm.test("201 Created", () => pm.response.to.have.status(201));
const user = pm.response.json();
pm.test("returns the new user without a Stripe customer", () => {
    pm.expect(user.id).to.be.a("string").and.not.empty;
    pm.expect(user.email).to.eql(pm.collectionVariables.get("userEmail"));
    pm.expect(user.user_stripe_id).to.eql(null);
    pm.expect(user).to.not.have.property("password");
});
pm.collectionVariables.set("userId", user.id);
""",
        ),
        request(
            "Register the same email again is a conflict",
            "POST",
            "/api/v1/auth/register",
            auth=False,
            body={"email": "{{userEmail}}", "password": "{{userPassword}}", "name": "Postman"},
            tests='pm.test("409 Conflict", () => pm.response.to.have.status(409));\n'
            + PROBLEM_TESTS,
        ),
        request(
            "Login",
            "POST",
            "/api/v1/auth/login",
            auth=False,
            body={"email": "{{userEmail}}", "password": "{{userPassword}}"},
            tests="""
pm.test("200 OK", () => pm.response.to.have.status(200));
const token = pm.response.json();
pm.test("returns a bearer token", () => {
    pm.expect(token.access_token).to.be.a("string").and.not.empty;
    pm.expect(token.token_type.toLowerCase()).to.eql("bearer");
    pm.expect(token.expires_in).to.be.above(0);
});
pm.collectionVariables.set("accessToken", token.access_token);
""",
        ),
        request(
            "Get user informations",
            "GET",
            "/api/v1/users/me",
            tests="""
pm.test("200 OK", () => pm.response.to.have.status(200));
pm.test("is the logged-in user, no Stripe customer yet", () => {
    const user = pm.response.json();
    pm.expect(user.id).to.eql(pm.collectionVariables.get("userId"));
    pm.expect(user.email).to.eql(pm.collectionVariables.get("userEmail"));
    pm.expect(user.user_stripe_id).to.eql(null);
});
""",
        ),
        request(
            "Without a token is 401",
            "GET",
            "/api/v1/users/me",
            auth=False,
            tests='pm.test("401 Unauthorized", () => pm.response.to.have.status(401));\n'
            + PROBLEM_TESTS,
        ),
        request(
            "Products",
            "GET",
            "/api/v1/products",
            auth=False,
            tests="""
pm.test("200 OK", () => pm.response.to.have.status(200));
const products = pm.response.json().products;
pm.test("every product has a server-side price in minor units", () => {
    pm.expect(products).to.be.an("array").and.not.empty;
    products.forEach((p) => {
        pm.expect(p.id).to.be.a("string");
        pm.expect(Number.isInteger(p.unit_amount)).to.be.true;
        pm.expect(p.currency).to.match(/^[a-z]{3}$/);
    });
});
const paid = products.find((p) => p.unit_amount > 0);
pm.test("the catalog has a paid product", () => pm.expect(paid).to.be.an("object"));
pm.collectionVariables.set("productId", paid.id);
pm.collectionVariables.set("productName", paid.name);
pm.collectionVariables.set("unitAmount", String(paid.unit_amount));
pm.collectionVariables.set("currency", paid.currency);
""",
        ),
        request(
            "Basket validation",
            "POST",
            "/api/v1/basket/validate",
            body=basket,
            tests="""
pm.test("200 OK", () => pm.response.to.have.status(200));
const basket = pm.response.json();
const unit = Number(pm.collectionVariables.get("unitAmount"));
pm.test("prices the basket on the server", () => {
    pm.expect(basket.amount_total).to.eql(2 * unit);
    pm.expect(basket.currency).to.eql(pm.collectionVariables.get("currency"));
    pm.expect(basket.lines).to.have.lengthOf(1);
    pm.expect(basket.lines[0].product_id).to.eql(pm.collectionVariables.get("productId"));
    pm.expect(basket.lines[0].quantity).to.eql(2);
});
pm.test("returns the user, who needs a Stripe customer", () => {
    pm.expect(basket.user.id).to.eql(pm.collectionVariables.get("userId"));
    pm.expect(basket.user.user_stripe_id).to.eql(null);
    pm.expect(basket.needs_stripe_customer).to.eql(true);
});
pm.collectionVariables.set("amountTotal", String(basket.amount_total));
""",
        ),
        request(
            "Basket with an unknown product is refused",
            "POST",
            "/api/v1/basket/validate",
            body={"items": [{"product_id": "no-such-product", "quantity": 1}]},
            tests='pm.test("422 Unprocessable", () => pm.response.to.have.status(422));\n'
            + PROBLEM_TESTS,
        ),
        request(
            "Basket with a zero quantity is refused",
            "POST",
            "/api/v1/basket/validate",
            body={"items": [{"product_id": "{{productId}}", "quantity": 0}]},
            tests='pm.test("422 Unprocessable", () => pm.response.to.have.status(422));\n'
            + PROBLEM_TESTS,
        ),
        request(
            "Create Stripe customer",
            "POST",
            "/api/v1/billing/customer",
            tests="""
pm.test("201 Created", () => pm.response.to.have.status(201));
const customer = pm.response.json();
pm.test("returns the Stripe customer id", () => {
    pm.expect(customer.user_id).to.eql(pm.collectionVariables.get("userId"));
    pm.expect(customer.user_stripe_id).to.match(/^cus_/);
});
pm.collectionVariables.set("stripeCustomerId", customer.user_stripe_id);
""",
        ),
        request(
            "Create Stripe customer again is idempotent",
            "POST",
            "/api/v1/billing/customer",
            tests="""
pm.test("200 OK", () => pm.response.to.have.status(200));
pm.test("the same customer", () => {
    pm.expect(pm.response.json().user_stripe_id)
        .to.eql(pm.collectionVariables.get("stripeCustomerId"));
});
""",
        ),
        request(
            "Update user with user_stripe_id",
            "PUT",
            "/api/v1/users/me/stripe-customer",
            body={"user_stripe_id": "{{stripeCustomerId}}"},
            tests="""
pm.test("200 OK", () => pm.response.to.have.status(200));
pm.test("stores the customer facturation created", () => {
    pm.expect(pm.response.json().user_stripe_id)
        .to.eql(pm.collectionVariables.get("stripeCustomerId"));
});
""",
        ),
        request(
            "Update user with another customer id is refused",
            "PUT",
            "/api/v1/users/me/stripe-customer",
            body={"user_stripe_id": "cus_notthisusers"},
            tests='pm.test("409 Conflict", () => pm.response.to.have.status(409));\n'
            + PROBLEM_TESTS,
        ),
        request(
            "Get user informations shows user_stripe_id",
            "GET",
            "/api/v1/users/me",
            tests="""
pm.test("200 OK", () => pm.response.to.have.status(200));
pm.test("user_stripe_id is stored in auth", () => {
    pm.expect(pm.response.json().user_stripe_id)
        .to.eql(pm.collectionVariables.get("stripeCustomerId"));
});
""",
        ),
        request(
            "Generate checkout",
            "POST",
            "/api/v1/billing/checkout-sessions",
            body=basket,
            tests="""
pm.test("201 Created", () => pm.response.to.have.status(201));
const session = pm.response.json();
pm.test("an embedded Checkout Session to mount with Stripe.js", () => {
    pm.expect(session.id).to.match(/^cs_/);
    pm.expect(session.client_secret).to.be.a("string").and.not.empty;
    pm.expect(session.amount_total).to.eql(Number(pm.collectionVariables.get("amountTotal")));
    pm.expect(session.currency).to.eql(pm.collectionVariables.get("currency"));
});
pm.collectionVariables.set("checkoutSessionId", session.id);
pm.collectionVariables.set("orderId", session.order_id || "");
""",
        ),
        request(
            "Session status",
            "GET",
            "/api/v1/billing/checkout-sessions/{{checkoutSessionId}}",
            tests="""
pm.test("200 OK", () => pm.response.to.have.status(200));
pm.test("open and unpaid until the buyer pays", () => {
    const status = pm.response.json();
    pm.expect(status.status).to.eql("open");
    pm.expect(status.payment_status).to.eql("unpaid");
});
""",
        ),
        request(
            "Invoices",
            "GET",
            "/api/v1/billing/invoices",
            tests="""
pm.test("200 OK", () => pm.response.to.have.status(200));
pm.test("a page of this user's invoices", () => {
    const page = pm.response.json();
    pm.expect(page.data).to.be.an("array");
    pm.expect(page.has_more).to.be.a("boolean");
});
""",
        ),
    ]


def _line(item: Obj, invoice_id: str) -> Obj:
    return objects.invoice_line(invoice_id=invoice_id, item=item, period=0)


def _invoice(invoice_var: str) -> Obj:
    item = objects.checkout_line_item(
        currency="__S_CURRENCY__",
        unit_amount=0,
        quantity=2,
        name="__S_PRODUCT__",
        description=None,
        created=0,
    )
    customer = objects.customer(
        created=0, email="__S_EMAIL__", name="Postman", description=None, phone=None, metadata={}
    )
    customer["id"] = "__S_CUSTOMER__"
    invoice = objects.invoice(
        created=0,
        customer_obj=customer,
        currency="__S_CURRENCY__",
        items=[item],
        description=None,
        metadata={"user_id": "__S_USER__", "order_id": "__S_ORDER__"},
        account_country="FR",
        account_name="Facturation",
    )
    old_id = invoice["id"]
    invoice = json.loads(json.dumps(invoice).replace(old_id, f"__S_{invoice_var}__"))
    for line in invoice["lines"]["data"]:
        line["amount"] = line["subtotal"] = "__N_AMOUNT__"
        line["pricing"]["unit_amount_decimal"] = "__S_UNIT__"
        line["period"] = {"start": "__N_NOW__", "end": "__N_NOW__"}
    for key in (
        "amount_due",
        "amount_remaining",
        "subtotal",
        "subtotal_excluding_tax",
        "total",
        "total_excluding_tax",
    ):
        invoice[key] = "__N_AMOUNT__"
    for key in ("created", "period_start", "period_end"):
        invoice[key] = "__N_NOW__"
    return invoice


def _finalized(invoice: Obj) -> Obj:
    return invoice_lifecycle.finalize(
        invoice,
        at="__N_NOW__",
        number="__S_NUMBER__",
        hosted_invoice_url="https://invoice.example.com/__S_ID__",
    ).invoice


def _paid(invoice: Obj) -> Obj:
    return invoice_lifecycle.pay(invoice, at="__N_NOW__").invoice


def _payment_failed(invoice: Obj) -> Obj:
    return invoice_lifecycle.fail_payment(invoice, at="__N_NOW__").invoice


def _voided(invoice: Obj) -> Obj:
    return invoice_lifecycle.void(invoice, at="__N_NOW__").invoice


def _session() -> Obj:
    session = objects.checkout_session(
        created=0,
        expires_at=0,
        currency="__S_CURRENCY__",
        amount_total=0,
        customer_id="__S_CUSTOMER__",
        customer_email=None,
        client_reference_id="__S_ORDER__",
        return_url="http://localhost:8000/?session_id={CHECKOUT_SESSION_ID}",
        redirect_on_completion="always",
        metadata={"user_id": "__S_USER__", "order_id": "__S_ORDER__"},
        invoice_creation=objects.invoice_creation(
            enabled=True,
            description=None,
            footer=None,
            metadata={"user_id": "__S_USER__", "order_id": "__S_ORDER__"},
        ),
        locale=None,
    )
    session.update(
        id="__S_SESSION__",
        client_secret=None,
        amount_subtotal="__N_AMOUNT__",
        amount_total="__N_AMOUNT__",
        created="__N_NOW__",
        expires_at="__N_NOW__",
        status="complete",
        payment_status="paid",
        invoice="__S_invoicePaidId__",
        payment_intent="pi_postman__S_RUN__",
        customer_details={
            "address": None,
            "business_name": None,
            "email": "__S_EMAIL__",
            "individual_name": None,
            "name": "Postman",
            "phone": None,
            "tax_exempt": "none",
            "tax_ids": [],
        },
    )
    return session


_PAYMENT = "pi_postman__S_RUN__"
_CHARGE = "ch_postman__S_RUN__"


def _refund(status: str) -> Obj:
    refund = payments.refund(
        created=0,
        amount=0,
        currency="__S_CURRENCY__",
        charge_id=_CHARGE,
        payment_intent=_PAYMENT,
        status=status,
        reason="requested_by_customer",
        refund_id="re_postman__S_RUN__",
    )
    refund.update(amount="__N_AMOUNT__", created="__N_NOW__", balance_transaction=None)
    return refund


def _refunded_charge() -> Obj:
    charge = payments.charge(
        charge_id=_CHARGE,
        created=0,
        amount=0,
        currency="__S_CURRENCY__",
        customer_id="__S_CUSTOMER__",
        payment_intent=_PAYMENT,
        payment_method="pm_postman__S_RUN__",
        email="__S_EMAIL__",
        name="Postman",
    )
    charge.update(
        amount="__N_AMOUNT__",
        amount_captured="__N_AMOUNT__",
        amount_refunded="__N_AMOUNT__",
        created="__N_NOW__",
        refunded=True,
        balance_transaction=None,
        receipt_url=None,
    )
    charge["payment_method_details"]["card"].update(
        amount_authorized="__N_AMOUNT__",
        fingerprint="postman",
        network_transaction_id="postman",
        overcapture={"maximum_amount_capturable": "__N_AMOUNT__", "status": "unavailable"},
    )
    charge["refunds"] = objects.list_object(
        [_refund("succeeded")], f"/v1/charges/{_CHARGE}/refunds"
    )
    return charge


def _dispute(status: str) -> Obj:
    dispute = payments.dispute(
        created=0,
        amount=0,
        currency="__S_CURRENCY__",
        charge_id=_CHARGE,
        payment_intent=_PAYMENT,
        status=status,
        dispute_id="du_postman__S_RUN__",
    )
    dispute.update(amount="__N_AMOUNT__", created="__N_NOW__")
    dispute["evidence_details"]["due_by"] = "__N_NOW__"
    return dispute


STRINGS = {
    "__S_CURRENCY__": "{{currency}}",
    "__S_PRODUCT__": "{{productName}}",
    "__S_EMAIL__": "{{userEmail}}",
    "__S_CUSTOMER__": "{{stripeCustomerId}}",
    "__S_USER__": "{{userId}}",
    "__S_ORDER__": "{{orderId}}",
    "__S_SESSION__": "{{checkoutSessionId}}",
    "__S_invoicePaidId__": "{{invoicePaidId}}",
    "__S_invoiceVoidId__": "{{invoiceVoidId}}",
    "__S_UNIT__": "{{unitAmount}}",
    "__S_RUN__": "{{runId}}",
    "__S_NUMBER__": "PM-{{runId}}",
}


def _raw_event(event_type: str, obj: Obj, event_name: str) -> str:
    event = objects.event(
        event_type=event_type, obj=obj, created=0, request_id=None, idempotency_key=None
    )
    event.update(id=f"evt_postman{{{{runId}}}}{event_name}", created="__N_NOW__")
    raw = json.dumps(event, indent=2)
    raw = raw.replace("__S_ID__", "{{invoicePaidId}}")
    for sentinel, variable in NUMBERS.items():
        raw = raw.replace(f'"{sentinel}"', "{{" + variable + "}}")
    for sentinel, value in STRINGS.items():
        raw = raw.replace(sentinel, value)
    leftover = re.findall(r"__[SN]_\w+__", raw)
    assert not leftover, leftover
    return raw


SIGN_SCRIPT = """
// Sign the exact bytes that will be sent, as Stripe does:
// Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>" under the webhook secret>.
const cryptoJs = require("crypto-js");  // bundled with Postman and newman
const secret = pm.environment.get("webhookSecret") || pm.collectionVariables.get("webhookSecret");
if (!secret) { throw new Error("set webhookSecret (STRIPE_WEBHOOK_SECRET) in the environment"); }
const now = Math.floor(Date.now() / 1000);
pm.variables.set("now", String(now));
const body = pm.variables.replaceIn(pm.request.body.raw);
pm.request.body.update(body);
const signature = cryptoJs.HmacSHA256(now + "." + body, secret).toString(cryptoJs.enc.Hex);
pm.request.headers.upsert({ key: "Stripe-Signature", value: "t=" + now + ",v1=" + signature });
"""

ACCEPTED_TESTS = """
pm.test("accepted (2xx)", () => pm.expect(pm.response.code).to.be.within(200, 299));
pm.test("acknowledges this event, DUPLICATE_TEXT", () => {
    const sent = JSON.parse(pm.variables.replaceIn(pm.request.body.raw));
    const ack = pm.response.json();
    pm.expect(ack.id).to.eql(sent.id);
    pm.expect(ack.duplicate).to.eql(DUPLICATE);
    pm.expect(ack.handled).to.eql(true);
});
"""


def webhooks() -> list[Obj]:
    paid_draft = _invoice("invoicePaidId")
    void_draft = _invoice("invoiceVoidId")
    events = [
        ("invoice.created", paid_draft, "paidcreated"),
        ("invoice.finalized", _finalized(paid_draft), "paidfinalized"),
        ("invoice.paid", _paid(_finalized(paid_draft)), "paidpaid"),
        ("checkout.session.completed", _session(), "sessioncompleted"),
        ("invoice.created", void_draft, "voidcreated"),
        ("invoice.finalized", _finalized(void_draft), "voidfinalized"),
        ("invoice.payment_failed", _payment_failed(_finalized(void_draft)), "voidfailed"),
        ("invoice.voided", _voided(_finalized(void_draft)), "voidvoided"),
        # Stripe delivers at least once: the same event again is acknowledged and stored once.
        ("invoice.paid", _paid(_finalized(paid_draft)), "paidpaid"),
        # The order, paid by the session above, refunded in full "from the Dashboard", then
        # disputed and the dispute lost (flow 7).
        ("refund.created", _refund("pending"), "refundcreated"),
        ("refund.updated", _refund("succeeded"), "refundupdated"),
        ("charge.refunded", _refunded_charge(), "chargerefunded"),
        ("charge.dispute.created", _dispute("needs_response"), "disputecreated"),
        ("charge.dispute.closed", _dispute("lost"), "disputeclosed"),
    ]
    items = []
    seen: set[str] = set()
    for event_type, obj, name in events:
        invoice_var = "invoicePaidId" if name.startswith("paid") else "invoiceVoidId"
        which = {"invoicePaidId": " (invoice to pay)", "invoiceVoidId": " (invoice to void)"}
        label = "" if not event_type.startswith("invoice.") else which[invoice_var]
        duplicate = name in seen
        title = event_type + label + (", duplicate delivery" if duplicate else "")
        seen.add(name)
        invoice_note = f" of invoice {{{{{invoice_var}}}}}" if label else ""
        items.append(
            request(
                title,
                "POST",
                "/webhooks/stripe",
                auth=False,
                body=_raw_event(event_type, obj, name),
                tests=ACCEPTED_TESTS.replace(
                    "DUPLICATE_TEXT", "stored once" if duplicate else "new"
                ).replace("DUPLICATE", "true" if duplicate else "false"),
                description=f"A signed `{event_type}` event{invoice_note}, as Stripe sends it.",
            )
        )
    items.append(
        request(
            "A body changed after signing is refused",
            "POST",
            "/webhooks/stripe",
            auth=False,
            body=_raw_event("invoice.paid", _paid(_finalized(paid_draft)), "tampered"),
            prerequest="""
const body = pm.request.body.raw;
pm.request.body.update(body.replace('"livemode": false', '"livemode": true'));
""",
            tests='pm.test("400 Bad Request", () => pm.response.to.have.status(400));\n'
            + PROBLEM_TESTS,
        )
    )
    return items


def invoices_after_events() -> list[Obj]:
    return [
        request(
            "Invoices after the events",
            "GET",
            "/api/v1/billing/invoices",
            prerequest="""
// Events are processed in the background: from the second try on, wait a little first.
if (Number(pm.collectionVariables.get("pollAttempt") || 0) > 0) {
    setTimeout(() => {}, 500);
}
""",
            tests="""
pm.test("200 OK", () => pm.response.to.have.status(200));
const page = pm.response.json();
const paid = page.data.find((i) => i.id === pm.collectionVariables.get("invoicePaidId"));
const voided = page.data.find((i) => i.id === pm.collectionVariables.get("invoiceVoidId"));
const settled = paid && paid.status === "paid" && voided && voided.status === "void";
const attempt = Number(pm.collectionVariables.get("pollAttempt") || 0);
if (!settled && attempt < 60) {
    pm.collectionVariables.set("pollAttempt", String(attempt + 1));
    pm.execution.setNextRequest(pm.info.requestName);
} else {
    pm.collectionVariables.unset("pollAttempt");
    const amount = Number(pm.collectionVariables.get("amountTotal"));
    pm.test("the paid invoice ends paid whatever the event order", () => {
        pm.expect(paid, "invoice listed").to.be.an("object");
        pm.expect(paid.status).to.eql("paid");
        pm.expect(paid.amount_paid).to.eql(amount);
        pm.expect(paid.amount_remaining).to.eql(0);
        pm.expect(paid.total).to.eql(amount);
        pm.expect(paid.currency).to.eql(pm.collectionVariables.get("currency"));
    });
    pm.test("the voided invoice ends void", () => {
        pm.expect(voided, "invoice listed").to.be.an("object");
        pm.expect(voided.status).to.eql("void");
        pm.expect(voided.amount_paid).to.eql(0);
    });
    pm.test("each invoice is listed once, newest first", () => {
        const ids = page.data.map((i) => i.id);
        pm.expect(new Set(ids).size).to.eql(ids.length);
    });
}
""",
        ),
        request(
            "One invoice with its lines",
            "GET",
            "/api/v1/billing/invoices/{{invoicePaidId}}",
            tests="""
pm.test("200 OK", () => pm.response.to.have.status(200));
pm.test("the invoice with its line", () => {
    const invoice = pm.response.json();
    pm.expect(invoice.id).to.eql(pm.collectionVariables.get("invoicePaidId"));
    pm.expect(invoice.status).to.eql("paid");
    pm.expect(invoice.lines).to.have.lengthOf(1);
    pm.expect(invoice.lines[0].quantity).to.eql(2);
    pm.expect(invoice.lines[0].amount).to.eql(Number(pm.collectionVariables.get("amountTotal")));
});
""",
        ),
        *invoice_pdf_requests(),
        request(
            "An unknown invoice is 404",
            "GET",
            "/api/v1/billing/invoices/in_notyours",
            tests='pm.test("404 Not Found", () => pm.response.to.have.status(404));\n'
            + PROBLEM_TESTS,
        ),
    ]


def invoice_pdf_requests() -> list[Obj]:
    """The paid invoice's PDF document (issue 13), then the same document revalidated by ETag."""
    download = request(
        "Invoice PDF",
        "GET",
        "/api/v1/billing/invoices/{{invoicePaidId}}/pdf",
        description="The invoice as a PDF document, stored once per invoice state; its ETag is "
        "the document's SHA-256.",
        tests=r"""
pm.test("200 OK", () => pm.response.to.have.status(200));
pm.test("a PDF attachment named after the invoice number", () => {
    pm.expect(pm.response.headers.get("Content-Type")).to.eql("application/pdf");
    pm.expect(pm.response.headers.get("Content-Disposition"))
        .to.match(/^attachment; filename="[A-Za-z0-9._-]+\.pdf"$/);
    pm.expect(pm.response.stream.slice(0, 5).toString()).to.eql("%PDF-");
});
const etag = pm.response.headers.get("ETag");
pm.test("tagged with the document's SHA-256", () => {
    pm.expect(etag).to.match(/^"[0-9a-f]{64}"$/);
});
pm.collectionVariables.set("invoicePdfEtag", etag);
""",
    )
    download["request"]["header"] = [{"key": "Accept", "value": "application/pdf"}]
    unchanged = request(
        "Invoice PDF unchanged is 304",
        "GET",
        "/api/v1/billing/invoices/{{invoicePaidId}}/pdf",
        description="The same invoice state serves the same document: If-None-Match matches.",
        tests="""
pm.test("304 Not Modified", () => pm.response.to.have.status(304));
pm.test("the same ETag", () => {
    pm.expect(pm.response.headers.get("ETag")).to.eql(pm.collectionVariables.get("invoicePdfEtag"));
});
""",
    )
    unchanged["request"]["header"] = [
        {"key": "Accept", "value": "application/pdf"},
        {"key": "If-None-Match", "value": "{{invoicePdfEtag}}"},
    ]
    return [download, unchanged]


def orders_after_events() -> list[Obj]:
    ops_headers = [
        {"key": "X-Internal-Token", "value": "{{internalToken}}"},
    ]
    refund_request = request(
        "Operations: refund an order (private network, internal credential)",
        "POST",
        "/internal/v1/orders/{{orderId}}/refunds",
        body={"amount": 100, "reason": "requested_by_customer"},
        auth=False,
        tests="""
pm.test("409: the order is refunded in full already, nothing is left", () => {
    pm.response.to.have.status(409);
});
"""
        + PROBLEM_TESTS,
        description=(
            "Never through the gateway: sent to facturation itself (`opsUrl`, port 8002) with "
            "the internal credential and an `Idempotency-Key`. On a paid order it answers 201 "
            "`{id, order_id, amount, status}`; here the order was refunded by the events above."
        ),
    )
    refund_request["request"]["url"] = {
        "raw": "{{opsUrl}}/internal/v1/orders/{{orderId}}/refunds",
        "host": ["{{opsUrl}}"],
        "path": ["internal", "v1", "orders", "{{orderId}}", "refunds"],
    }
    refund_request["request"]["header"] += [
        *ops_headers,
        {"key": "Idempotency-Key", "value": "postman-{{runId}}"},
    ]
    return [
        request(
            "The order after the refund and dispute events",
            "GET",
            "/api/v1/billing/orders/{{orderId}}",
            prerequest="""
if (Number(pm.collectionVariables.get("pollAttempt") || 0) > 0) {
    setTimeout(() => {}, 500);
}
""",
            tests="""
pm.test("200 OK", () => pm.response.to.have.status(200));
const order = pm.response.json();
const attempt = Number(pm.collectionVariables.get("pollAttempt") || 0);
if (order.status !== "refunded" && attempt < 60) {
    pm.collectionVariables.set("pollAttempt", String(attempt + 1));
    pm.execution.setNextRequest(pm.info.requestName);
} else {
    pm.collectionVariables.unset("pollAttempt");
    pm.test("refunded in full, whatever the events' order", () => {
        pm.expect(order.status).to.eql("refunded");
        pm.expect(order.amount_refunded).to.eql(Number(pm.collectionVariables.get("amountTotal")));
    });
}
""",
        ),
        request(
            "Orders, newest first",
            "GET",
            "/api/v1/billing/orders",
            tests="""
pm.test("200 OK", () => pm.response.to.have.status(200));
pm.test("the order is listed with what was refunded", () => {
    const page = pm.response.json();
    const order = page.data.find((o) => o.id === pm.collectionVariables.get("orderId"));
    pm.expect(order, "order listed").to.be.an("object");
    pm.expect(order.amount_refunded).to.eql(order.amount_total);
    pm.expect(page.has_more).to.be.a("boolean");
});
""",
        ),
        request(
            "Entitlements, every one",
            "GET",
            "/api/v1/billing/entitlements?status=all",
            tests="""
pm.test("200 OK", () => pm.response.to.have.status(200));
pm.test("the order's products were granted, then revoked", () => {
    const granted = pm.response.json().data.filter(
        (e) => e.source === "order" && e.source_id === pm.collectionVariables.get("orderId"));
    pm.expect(granted).to.not.be.empty;
    granted.forEach((e) => pm.expect(e.status).to.eql("revoked"));
});
""",
        ),
        request(
            "Entitlements in use: none left",
            "GET",
            "/api/v1/billing/entitlements",
            tests="""
pm.test("200 OK", () => pm.response.to.have.status(200));
pm.test("a revoked product is not listed", () => {
    const mine = pm.response.json().data.filter(
        (e) => e.source_id === pm.collectionVariables.get("orderId"));
    pm.expect(mine).to.be.empty;
});
""",
        ),
        refund_request,
    ]


def collection() -> Obj:
    return {
        "info": {
            "_postman_id": "6f1d8a52-3c1e-4b8e-9d0f-5f7c2b1a9e10",
            "name": "facturation",
            "description": (
                "The whole flow through the gateway, in the order of the design's sequence "
                "diagrams, then Stripe webhook events signed with the environment's "
                "webhookSecret exactly as Stripe signs them. Run it with newman: see the README."
            ),
            "schema": SCHEMA,
        },
        "auth": {
            "type": "bearer",
            "bearer": [{"key": "token", "value": "{{accessToken}}", "type": "string"}],
        },
        "variable": [
            {"key": "accessToken", "value": ""},
            {"key": "userEmail", "value": ""},
            {"key": "userId", "value": ""},
        ],
        "item": [
            {
                "name": "1. Flow: register to checkout",
                "description": "Basket validation, first purchase (Stripe customer, update user), "
                "checkout, session status, invoices.",
                "item": flow(),
            },
            {
                "name": "2. Stripe webhook events",
                "description": "Each body is a full Stripe event of API version "
                f"{objects.API_VERSION}; the folder's pre-request script signs it.",
                "event": [script("prerequest", SIGN_SCRIPT)],
                "item": webhooks(),
            },
            {"name": "3. Invoices after the events", "item": invoices_after_events()},
            {
                "name": "4. Orders after the events",
                "description": "The order the session paid, refunded and disputed by the "
                "events of folder 2; the operations refund route (private, never through the "
                "gateway) needs `opsUrl` and `internalToken`.",
                "item": orders_after_events(),
            },
        ],
    }


def environment() -> Obj:
    return {
        "id": "0b7c4d8e-2f6a-4e1b-8c3d-9a5e7f1b2c40",
        "name": "facturation local (make dev)",
        "values": [
            {
                "key": "baseUrl",
                "value": "http://localhost:8000",
                "type": "default",
                "enabled": True,
            },
            {
                "key": "userPassword",
                "value": "postman-password-123",
                "type": "secret",
                "enabled": True,
            },
            {
                "key": "webhookSecret",
                "value": "",
                "type": "secret",
                "enabled": True,
            },
            {
                "key": "opsUrl",
                "value": "http://localhost:8002",
                "type": "default",
                "enabled": True,
            },
            {
                "key": "internalToken",
                "value": "",
                "type": "secret",
                "enabled": True,
            },
        ],
        "_postman_variable_scope": "environment",
    }


def main() -> None:
    for name, content in (
        ("facturation.postman_collection.json", collection()),
        ("facturation.postman_environment.json", environment()),
    ):
        (HERE / name).write_text(json.dumps(content, indent=2) + "\n")


if __name__ == "__main__":
    main()
