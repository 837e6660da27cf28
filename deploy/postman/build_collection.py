"""Writes the Postman collection and environment next to this file.

The webhook events are built with the sandbox's own object builders and moved along the invoice
lifecycle by ``stripe_sandbox.invoice_lifecycle``, so they are full Stripe objects of the pinned
API version in the states Stripe sends; ids, amounts and timestamps become Postman variables.
Run ``.venv/bin/python deploy/postman/build_collection.py`` after changing either.
"""

from __future__ import annotations

import json
import re
from http import HTTPStatus
from pathlib import Path
from typing import Any

from stripe_sandbox import invoice_lifecycle, objects, payments, subscription_objects

HERE = Path(__file__).resolve().parent
SCHEMA = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"
Obj = dict[str, Any]

# Sentinels in the generated objects, replaced by Postman variables in the raw body. Numbers
# become bare {{var}} so the body Postman sends (and signs) is valid JSON after substitution.
NUMBERS = {
    "__N_AMOUNT__": "amountTotal",
    "__N_UNIT__": "unitAmount",
    "__N_NOW__": "now",
    "__N_PLAN__": "planAmount",
    "__N_PERIOD_START__": "periodStart",
    "__N_PERIOD_END__": "periodEnd",
    "__N_RENEWAL_END__": "renewalEnd",
}


def js(source: str) -> list[str]:
    return source.strip("\n").split("\n")


def script(listen: str, source: str) -> Obj:
    return {"listen": listen, "script": {"type": "text/javascript", "exec": js(source)}}


def url(path: str, base: str = "{{baseUrl}}") -> Obj:
    return {"raw": base + path, "host": [base], "path": [p for p in path.split("/") if p]}


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


def refused(
    name: str,
    method: str,
    path: str,
    status: int,
    *,
    body: Obj | str | None = None,
    auth: bool = True,
    prerequest: str | None = None,
    description: str = "",
) -> Obj:
    """A request the API refuses with ``status`` and a problem+json body."""
    phrase = HTTPStatus(status).phrase
    return request(
        name,
        method,
        path,
        body=body,
        auth=auth,
        prerequest=prerequest,
        description=description,
        tests=f'pm.test("{status} {phrase}", () => pm.response.to.have.status({status}));\n'
        + PROBLEM_TESTS,
    )


POLL_PREREQUEST = """
// Events are processed in the background: from the second try on, wait a little first.
if (Number(pm.collectionVariables.get("pollAttempt") || 0) > 0) {
    setTimeout(() => {}, 500);
}
"""


def polled(
    name: str, path: str, *, read: str, ready: str, tests: str, description: str = ""
) -> Obj:
    """A GET asked again (up to 60 times, half a second apart) until ``ready`` holds, a
    JavaScript condition over the constants ``read`` declares from the answer; then ``tests``.
    Postman goes back by request name, so ``name`` must be unique in the collection."""
    body = "\n".join("    " + line if line else line for line in js(tests))
    return request(
        name,
        "GET",
        path,
        prerequest=POLL_PREREQUEST,
        description=description,
        tests=f"""
pm.test("200 OK", () => pm.response.to.have.status(200));
{read.strip()}
const attempt = Number(pm.collectionVariables.get("pollAttempt") || 0);
if (!({ready}) && attempt < 60) {{
    pm.collectionVariables.set("pollAttempt", String(attempt + 1));
    pm.execution.setNextRequest(pm.info.requestName);
}} else {{
    pm.collectionVariables.unset("pollAttempt");
{body}
}}
""",
    )


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
// The subscription of folder 6 (made by its events alone) and its two billing periods.
pm.collectionVariables.set("eventSubscriptionId", "sub_postman" + runId);
pm.collectionVariables.set("invoiceSubFirstId", "in_postman" + runId + "subfirst");
pm.collectionVariables.set("invoiceSubRenewalId", "in_postman" + runId + "subrenewal");
const start = Math.floor(Date.now() / 1000);
pm.collectionVariables.set("periodStart", String(start));
pm.collectionVariables.set("periodEnd", String(start + 30 * 86400));
pm.collectionVariables.set("renewalEnd", String(start + 61 * 86400));
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
        refused(
            "Register the same email again is a conflict",
            "POST",
            "/api/v1/auth/register",
            409,
            auth=False,
            body={"email": "{{userEmail}}", "password": "{{userPassword}}", "name": "Postman"},
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
        refused(
            "Without a token is 401",
            "GET",
            "/api/v1/users/me",
            401,
            auth=False,
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
        refused(
            "Basket with an unknown product is refused",
            "POST",
            "/api/v1/basket/validate",
            422,
            body={"items": [{"product_id": "no-such-product", "quantity": 1}]},
        ),
        refused(
            "Basket with a zero quantity is refused",
            "POST",
            "/api/v1/basket/validate",
            422,
            body={"items": [{"product_id": "{{productId}}", "quantity": 0}]},
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
        refused(
            "Update user with another customer id is refused",
            "PUT",
            "/api/v1/users/me/stripe-customer",
            409,
            body={"user_stripe_id": "cus_notthisusers"},
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


def _invoice(
    invoice_var: str,
    *,
    quantity: int = 2,
    name: str = "__S_PRODUCT__",
    currency: str = "__S_CURRENCY__",
    amount: str = "__N_AMOUNT__",
    unit: str = "__S_UNIT__",
    period: tuple[str, str] = ("__N_NOW__", "__N_NOW__"),
    metadata: dict[str, str] | None = None,
) -> Obj:
    """A draft invoice of the basket (by default) or of other sentinels' line."""
    item = objects.checkout_line_item(
        currency=currency,
        unit_amount=0,
        quantity=quantity,
        name=name,
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
        currency=currency,
        items=[item],
        description=None,
        metadata={"user_id": "__S_USER__", "order_id": "__S_ORDER__"}
        if metadata is None
        else metadata,
        account_country="FR",
        account_name="Facturation",
    )
    old_id = invoice["id"]
    invoice = json.loads(json.dumps(invoice).replace(old_id, f"__S_{invoice_var}__"))
    for line in invoice["lines"]["data"]:
        line["amount"] = line["subtotal"] = amount
        line["pricing"]["unit_amount_decimal"] = unit
        line["period"] = {"start": period[0], "end": period[1]}
    for key in (
        "amount_due",
        "amount_remaining",
        "subtotal",
        "subtotal_excluding_tax",
        "total",
        "total_excluding_tax",
    ):
        invoice[key] = amount
    for key in ("created", "period_start", "period_end"):
        invoice[key] = "__N_NOW__"
    return invoice


def _finalized(invoice: Obj, number: str = "__S_NUMBER__") -> Obj:
    return invoice_lifecycle.finalize(
        invoice,
        at="__N_NOW__",
        number=number,
        hosted_invoice_url=f"https://invoice.example.com/{invoice['id']}",
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


# The subscription of folder 6: the monthly plan, for this run's user, made outside our checkout
# (no order), with ids of its own so the body is the same at every build.
_SUB = "__S_SUB__"
_SUB_ITEM = "si_postman__S_RUN__"
_PLAN_METADATA = {"user_id": "__S_USER__", "product_id": "__S_PLAN_ID__"}
_FIRST_PERIOD = ("__N_PERIOD_START__", "__N_PERIOD_END__")
_RENEWAL_PERIOD = ("__N_PERIOD_END__", "__N_RENEWAL_END__")


def _plan_subscription(
    status: str,
    period: tuple[str, str] = _FIRST_PERIOD,
    latest_invoice: str = "__S_invoiceSubFirstId__",
    **changes: Any,
) -> Obj:
    """The subscription's snapshot in ``status`` (periods live on its item: API 2026-10-28)."""
    line = objects.checkout_line_item(
        currency="__S_PLAN_CURRENCY__",
        unit_amount=0,
        quantity=1,
        name="__S_PLAN_NAME__",
        description=None,
        created=0,
        recurring=subscription_objects.recurring("month", 1),
    )
    line["price"].update(
        id="price_postman__S_RUN__",
        product="prod_postman__S_RUN__",
        created="__N_PERIOD_START__",
        unit_amount="__N_PLAN__",
        unit_amount_decimal="__S_PLAN_UNIT__",
    )
    item = subscription_objects.subscription_item(
        subscription_id=_SUB, line_item=line, created=0, end=0
    )
    item.update(
        id=_SUB_ITEM,
        created="__N_PERIOD_START__",
        current_period_start=period[0],
        current_period_end=period[1],
    )
    subscription = subscription_objects.subscription(
        subscription_id=_SUB,
        customer_id="__S_CUSTOMER__",
        currency="__S_PLAN_CURRENCY__",
        items=[item],
        metadata=dict(_PLAN_METADATA),
        created=0,
        latest_invoice=latest_invoice,
    )
    subscription.update(
        created="__N_PERIOD_START__",
        start_date="__N_PERIOD_START__",
        billing_cycle_anchor="__N_PERIOD_START__",
        status=status,
        **changes,
    )
    return subscription


def _plan_invoice(invoice_var: str, reason: str, period: tuple[str, str]) -> Obj:
    """A draft invoice of the subscription, naming it in ``parent.subscription_details``."""
    invoice = _invoice(
        invoice_var,
        quantity=1,
        name="__S_PLAN_NAME__",
        currency="__S_PLAN_CURRENCY__",
        amount="__N_PLAN__",
        unit="__S_PLAN_UNIT__",
        period=period,
        metadata={},
    )
    invoice.update(
        billing_reason=reason,
        parent={
            "type": "subscription_details",
            "quote_details": None,
            "subscription_details": {
                "metadata": dict(_PLAN_METADATA),
                "subscription": _SUB,
                "subscription_proration_date": None,
            },
        },
    )
    for line in invoice["lines"]["data"]:
        line["subscription"] = _SUB
        line["parent"] = {
            "type": "subscription_item_details",
            "invoice_item_details": None,
            "subscription_item_details": {
                "invoice_item": None,
                "proration": False,
                "proration_details": {"credited_items": None},
                "subscription": _SUB,
                "subscription_item": _SUB_ITEM,
            },
        }
    return invoice


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
    "__S_SUB__": "{{eventSubscriptionId}}",
    "__S_invoiceSubFirstId__": "{{invoiceSubFirstId}}",
    "__S_invoiceSubRenewalId__": "{{invoiceSubRenewalId}}",
    "__S_PLAN_ID__": "{{planId}}",
    "__S_PLAN_NAME__": "{{planName}}",
    "__S_PLAN_UNIT__": "{{planAmount}}",
    "__S_PLAN_CURRENCY__": "{{planCurrency}}",
}


def _raw_event(event_type: str, obj: Obj, event_name: str) -> str:
    event = objects.event(
        event_type=event_type, obj=obj, created=0, request_id=None, idempotency_key=None
    )
    event.update(id=f"evt_postman{{{{runId}}}}{event_name}", created="__N_NOW__")
    raw = json.dumps(event, indent=2)
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


def signed_event(
    title: str, event_type: str, obj: Obj, name: str, *, duplicate: bool, description: str
) -> Obj:
    """POST one full event to the webhook receiver, signed by its folder's pre-request script;
    the same ``name`` again is the same event id (a duplicate delivery)."""
    return request(
        title + (", duplicate delivery" if duplicate else ""),
        "POST",
        "/webhooks/stripe",
        auth=False,
        body=_raw_event(event_type, obj, name),
        tests=ACCEPTED_TESTS.replace(
            "DUPLICATE_TEXT", "stored once" if duplicate else "new"
        ).replace("DUPLICATE", "true" if duplicate else "false"),
        description=description,
    )


def signed_folder(name: str, description: str, items: list[Obj]) -> Obj:
    return {
        "name": name,
        "description": description,
        "event": [script("prerequest", SIGN_SCRIPT)],
        "item": items,
    }


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
        invoice_note = f" of invoice {{{{{invoice_var}}}}}" if label else ""
        items.append(
            signed_event(
                event_type + label,
                event_type,
                obj,
                name,
                duplicate=name in seen,
                description=f"A signed `{event_type}` event{invoice_note}, as Stripe sends it.",
            )
        )
        seen.add(name)
    items.append(
        refused(
            "A body changed after signing is refused",
            "POST",
            "/webhooks/stripe",
            400,
            auth=False,
            body=_raw_event("invoice.paid", _paid(_finalized(paid_draft)), "tampered"),
            prerequest="""
const body = pm.request.body.raw;
pm.request.body.update(body.replace('"livemode": false', '"livemode": true'));
""",
        )
    )
    return items


def invoices_after_events() -> list[Obj]:
    return [
        polled(
            "Invoices after the events",
            "/api/v1/billing/invoices",
            read="""
const page = pm.response.json();
const paid = page.data.find((i) => i.id === pm.collectionVariables.get("invoicePaidId"));
const voided = page.data.find((i) => i.id === pm.collectionVariables.get("invoiceVoidId"));
""",
            ready='paid && paid.status === "paid" && voided && voided.status === "void"',
            tests="""
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
        refused(
            "An unknown invoice is 404",
            "GET",
            "/api/v1/billing/invoices/in_notyours",
            404,
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
    refund_request["request"]["url"] = url("/internal/v1/orders/{{orderId}}/refunds", "{{opsUrl}}")
    refund_request["request"]["header"] += [
        *ops_headers,
        {"key": "Idempotency-Key", "value": "postman-{{runId}}"},
    ]
    return [
        polled(
            "The order after the refund and dispute events",
            "/api/v1/billing/orders/{{orderId}}",
            read="const order = pm.response.json();",
            ready='order.status === "refunded"',
            tests="""
pm.test("refunded in full, whatever the events' order", () => {
    pm.expect(order.status).to.eql("refunded");
    pm.expect(order.amount_refunded).to.eql(Number(pm.collectionVariables.get("amountTotal")));
});
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


def subscription_routes() -> list[Obj]:
    """Flow 8 through the gateway: a plan bought in the embedded checkout (paid here with the
    sandbox's test control, as the card form would), one live subscription per user, cancel at
    period end, resume, the portal, cancel now."""
    mine = "/api/v1/billing/subscriptions/{{subscriptionId}}"
    pay = request(
        "Pay the subscription with 4242 (sandbox test control)",
        "POST",
        "/sandbox/checkout/sessions/{{subscriptionSessionId}}/complete",
        auth=False,
        body={"client_secret": "{{subscriptionClientSecret}}", "card_number": "4242424242424242"},
        description="What the embedded card form does, at the local sandbox (`sandboxUrl`); "
        "against Stripe, pay in the SPA instead. The sandbox then sends the subscription's "
        "events to the webhook.",
        tests="""
pm.test("200 OK", () => pm.response.to.have.status(200));
const session = pm.response.json();
pm.test("the session is complete, its first invoice paid", () => {
    pm.expect(session.id).to.eql(pm.collectionVariables.get("subscriptionSessionId"));
    pm.expect(session.status).to.eql("complete");
    pm.expect(session.payment_status).to.eql("paid");
    pm.expect(session.invoice).to.match(/^in_/);
});
""",
    )
    pay["request"]["url"] = url(
        "/sandbox/checkout/sessions/{{subscriptionSessionId}}/complete", "{{sandboxUrl}}"
    )
    plan_alone = {"items": [{"product_id": "{{planId}}", "quantity": 1}]}
    return [
        request(
            "Products: the subscription plans",
            "GET",
            "/api/v1/products",
            auth=False,
            tests="""
pm.test("200 OK", () => pm.response.to.have.status(200));
const products = pm.response.json().products;
const plan = products.find((p) => p.recurring && p.recurring.interval === "month");
pm.test("a monthly plan, and one-time products without recurring", () => {
    pm.expect(plan, "a monthly plan").to.be.an("object");
    pm.expect(plan.recurring.interval_count).to.be.at.least(1);
    pm.expect(products.filter((p) => p.recurring === null)).to.not.be.empty;
});
pm.collectionVariables.set("planId", plan.id);
pm.collectionVariables.set("planName", plan.name);
pm.collectionVariables.set("planAmount", String(plan.unit_amount));
pm.collectionVariables.set("planCurrency", plan.currency);
""",
        ),
        refused(
            "A plan with another product is refused",
            "POST",
            "/api/v1/billing/checkout-sessions",
            422,
            body={
                "items": [
                    {"product_id": "{{planId}}", "quantity": 1},
                    {"product_id": "{{productId}}", "quantity": 1},
                ]
            },
        ),
        refused(
            "A plan with quantity 2 is refused",
            "POST",
            "/api/v1/billing/checkout-sessions",
            422,
            body={"items": [{"product_id": "{{planId}}", "quantity": 2}]},
        ),
        request(
            "Subscription checkout",
            "POST",
            "/api/v1/billing/checkout-sessions",
            body=plan_alone,
            description="The same embedded checkout, in `mode=subscription` for a plan.",
            tests="""
pm.test("201 Created", () => pm.response.to.have.status(201));
const session = pm.response.json();
pm.test("an embedded Checkout Session for one period of the plan", () => {
    pm.expect(session.id).to.match(/^cs_/);
    pm.expect(session.client_secret).to.be.a("string").and.not.empty;
    pm.expect(session.amount_total).to.eql(Number(pm.collectionVariables.get("planAmount")));
    pm.expect(session.currency).to.eql(pm.collectionVariables.get("planCurrency"));
});
pm.collectionVariables.set("subscriptionSessionId", session.id);
pm.collectionVariables.set("subscriptionClientSecret", session.client_secret);
""",
        ),
        refused(
            "A second subscription checkout while one is open is a conflict",
            "POST",
            "/api/v1/billing/checkout-sessions",
            409,
            body=plan_alone,
        ),
        pay,
        polled(
            "Subscriptions: the paid plan is active",
            "/api/v1/billing/subscriptions",
            read="""
// The user's first subscription: the one the paid session made (Stripe's sub_...).
const sub = pm.response.json().data.find((s) => s.status === "active");
""",
            ready="sub",
            tests="""
pm.collectionVariables.set("subscriptionId", sub ? sub.id : "");
pm.test("active, renewing, for the plan", () => {
    pm.expect(sub.id).to.match(/^sub_/);
    pm.expect(sub, "subscription listed").to.be.an("object");
    pm.expect(sub.status).to.eql("active");
    pm.expect(sub.product_id).to.eql(pm.collectionVariables.get("planId"));
    pm.expect(sub.cancel_at_period_end).to.eql(false);
    pm.expect(sub.current_period_end).to.be.above(Date.now() / 1000);
});
""",
        ),
        polled(
            "Entitlements: the plan, from its subscription",
            "/api/v1/billing/entitlements",
            read="""
const granted = pm.response.json().data.find(
    (e) => e.source_id === pm.collectionVariables.get("subscriptionId"));
""",
            ready='granted && granted.status === "active"',
            tests="""
pm.test("the plan is active, source subscription", () => {
    pm.expect(granted, "entitlement listed").to.be.an("object");
    pm.expect(granted.status).to.eql("active");
    pm.expect(granted.source).to.eql("subscription");
    pm.expect(granted.product_id).to.eql(pm.collectionVariables.get("planId"));
});
""",
        ),
        refused(
            "A second subscription while one is live is a conflict",
            "POST",
            "/api/v1/billing/checkout-sessions",
            409,
            body=plan_alone,
        ),
        subscription_change(
            "Cancel at period end",
            mine + "/cancel",
            {"at_period_end": True},
            status="active",
            cancel_at_period_end=True,
        ),
        subscription_change(
            "Resume", mine + "/resume", None, status="active", cancel_at_period_end=False
        ),
        request(
            "Portal session",
            "POST",
            "/api/v1/billing/portal-sessions",
            body={},
            description="A Customer Portal session; `return_url` (optional) must be on "
            "CHECKOUT_RETURN_ORIGINS, the first of which (+ `/`) is the default.",
            tests="""
pm.test("201 Created", () => pm.response.to.have.status(201));
pm.test("the portal's URL", () => {
    pm.expect(pm.response.json().url).to.match(/^https?:\\/\\/\\S+$/);
});
""",
        ),
        refused(
            "A portal return_url on another site is refused",
            "POST",
            "/api/v1/billing/portal-sessions",
            422,
            body={"return_url": "https://elsewhere.example/"},
        ),
        refused(
            "Cancel an unknown subscription is 404",
            "POST",
            "/api/v1/billing/subscriptions/sub_notyours/cancel",
            404,
            body={"at_period_end": True},
        ),
        subscription_change(
            "Cancel now",
            mine + "/cancel",
            {"at_period_end": False},
            status="canceled",
            cancel_at_period_end=False,
        ),
        refused("Resume an ended subscription is a conflict", "POST", mine + "/resume", 409),
    ]


def subscription_change(
    name: str, path: str, body: Obj | None, *, status: str, cancel_at_period_end: bool
) -> Obj:
    """A cancel or resume: 200 and the subscription in its new state."""
    flag = "true" if cancel_at_period_end else "false"
    return request(
        name,
        "POST",
        path,
        body=body,
        tests=f"""
pm.test("200 OK", () => pm.response.to.have.status(200));
pm.test("{status}, cancel_at_period_end {flag}", () => {{
    const sub = pm.response.json();
    pm.expect(sub.id).to.eql(pm.collectionVariables.get("subscriptionId"));
    pm.expect(sub.status).to.eql("{status}");
    pm.expect(sub.cancel_at_period_end).to.eql({flag});
}});
""",
    )


def subscription_state(name: str, status: str, entitlement: str, period_end: str) -> list[Obj]:
    """The event-made subscription listed in ``status`` with its period ending at the variable
    ``period_end``, and its entitlement (every status listed) in ``entitlement``."""
    return [
        polled(
            f"The subscription is {status}",
            "/api/v1/billing/subscriptions",
            read="""
const sub = pm.response.json().data.find(
    (s) => s.id === pm.collectionVariables.get("eventSubscriptionId"));
""",
            ready=f'sub && sub.status === "{status}"',
            tests=f"""
pm.test("{status}, for the plan, period to {{{{{period_end}}}}}", () => {{
    pm.expect(sub, "subscription listed").to.be.an("object");
    pm.expect(sub.status).to.eql("{status}");
    pm.expect(sub.product_id).to.eql(pm.collectionVariables.get("planId"));
    pm.expect(sub.current_period_end).to.eql(Number(pm.collectionVariables.get("{period_end}")));
}});
""",
            description=name,
        ),
        polled(
            f"Its plan is {entitlement}",
            "/api/v1/billing/entitlements?status=all",
            read="""
const granted = pm.response.json().data.find(
    (e) => e.source_id === pm.collectionVariables.get("eventSubscriptionId"));
""",
            ready=f'granted && granted.status === "{entitlement}"',
            tests=f"""
pm.test("the plan's entitlement is {entitlement}, source subscription", () => {{
    pm.expect(granted, "entitlement listed").to.be.an("object");
    pm.expect(granted.status).to.eql("{entitlement}");
    pm.expect(granted.source).to.eql("subscription");
    pm.expect(granted.product_id).to.eql(pm.collectionVariables.get("planId"));
}});
""",
        ),
    ]


def subscription_events() -> list[Obj]:
    """Folder 6: a subscription of the run's user told only by signed events, as Stripe sends
    them: paid and active, a renewal that fails (past_due), deleted; each step then read back."""
    first = _plan_invoice("invoiceSubFirstId", "subscription_create", _FIRST_PERIOD)
    renewal = _plan_invoice("invoiceSubRenewalId", "subscription_cycle", _RENEWAL_PERIOD)
    ended = {"canceled_at": "__N_NOW__", "ended_at": "__N_NOW__"}

    seen: set[str] = set()

    def events(*steps: tuple[str, Obj, str, str]) -> list[Obj]:
        made = []
        for title, event_type, obj, name in steps:
            made.append(
                signed_event(
                    title,
                    event_type,
                    obj,
                    name,
                    duplicate=name in seen,
                    description=f"A signed `{event_type}` event of subscription "
                    "{{eventSubscriptionId}}, as Stripe sends it.",
                )
            )
            seen.add(name)
        return made

    return [
        signed_folder(
            "6.1 Subscribed: created, first invoice paid, active",
            "The order Stripe sends them in; the invoice names its subscription in "
            "`parent.subscription_details`.",
            events(
                (
                    "customer.subscription.created (incomplete)",
                    "customer.subscription.created",
                    _plan_subscription("incomplete"),
                    "subcreated",
                ),
                (
                    "invoice.paid of the first period",
                    "invoice.paid",
                    _paid(_finalized(first, "__S_NUMBER__-S1")),
                    "subfirstpaid",
                ),
                (
                    "customer.subscription.updated (active)",
                    "customer.subscription.updated",
                    _plan_subscription("active"),
                    "subactive",
                ),
            ),
        ),
        {
            "name": "6.2 Active and entitled until the period's end",
            "item": [
                *subscription_state("after the first payment", "active", "active", "periodEnd"),
                polled(
                    "The first invoice of the subscription is paid",
                    "/api/v1/billing/invoices",
                    read="""
const invoice = pm.response.json().data.find(
    (i) => i.id === pm.collectionVariables.get("invoiceSubFirstId"));
""",
                    ready='invoice && invoice.status === "paid"',
                    tests="""
pm.test("paid, one period of the plan", () => {
    pm.expect(invoice, "invoice listed").to.be.an("object");
    pm.expect(invoice.status).to.eql("paid");
    pm.expect(invoice.amount_paid).to.eql(Number(pm.collectionVariables.get("planAmount")));
});
""",
                ),
            ],
        },
        signed_folder(
            "6.3 The renewal fails: invoice.payment_failed, past_due",
            "The next period's invoice stays open (attempt_count 1); the subscription goes "
            "`past_due` in that new period.",
            events(
                (
                    "invoice.payment_failed of the renewal",
                    "invoice.payment_failed",
                    _payment_failed(_finalized(renewal, "__S_NUMBER__-S2")),
                    "subrenewalfailed",
                ),
                (
                    "customer.subscription.updated (past_due)",
                    "customer.subscription.updated",
                    _plan_subscription(
                        "past_due", _RENEWAL_PERIOD, latest_invoice="__S_invoiceSubRenewalId__"
                    ),
                    "subpastdue",
                ),
            ),
        ),
        {
            "name": "6.4 Past due: the plan suspended",
            "item": subscription_state(
                "after the failed renewal", "past_due", "suspended", "renewalEnd"
            ),
        },
        signed_folder(
            "6.5 Deleted, delivered twice, then a late update",
            "An ended subscription never comes back: a late `updated` (active) changes nothing.",
            events(
                (
                    "customer.subscription.deleted",
                    "customer.subscription.deleted",
                    _plan_subscription(
                        "canceled",
                        _RENEWAL_PERIOD,
                        latest_invoice="__S_invoiceSubRenewalId__",
                        **ended,
                    ),
                    "subdeleted",
                ),
                (
                    "customer.subscription.deleted",
                    "customer.subscription.deleted",
                    _plan_subscription(
                        "canceled",
                        _RENEWAL_PERIOD,
                        latest_invoice="__S_invoiceSubRenewalId__",
                        **ended,
                    ),
                    "subdeleted",
                ),
                (
                    "customer.subscription.updated (active), arriving late",
                    "customer.subscription.updated",
                    _plan_subscription(
                        "active", _RENEWAL_PERIOD, latest_invoice="__S_invoiceSubRenewalId__"
                    ),
                    "sublate",
                ),
            ),
        ),
        {
            "name": "6.6 Canceled: the plan expired",
            "item": subscription_state("after the deletion", "canceled", "expired", "renewalEnd"),
        },
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
            {
                "name": "5. Subscriptions: checkout, cancel, resume, portal",
                "description": "Flow 8 with a real subscription at the sandbox: bought in the "
                "same embedded checkout, paid with the sandbox's test control (`sandboxUrl`), "
                "one live subscription per user, then the subscription routes.",
                "item": subscription_routes(),
            },
            {
                "name": "6. A subscription from its events",
                "description": "Signed `customer.subscription.*` and subscription invoice events "
                "(API version "
                f"{objects.API_VERSION}) for a subscription of this user made outside our "
                "checkout, each step read back: newest snapshot wins, entitlement follows.",
                "item": subscription_events(),
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
                "key": "sandboxUrl",
                "value": "http://localhost:12111",
                "type": "default",
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
