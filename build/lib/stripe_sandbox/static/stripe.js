/*
 * Stand-in Stripe.js served by stripe_sandbox (offline dev and tests only).
 *
 * Implements what the demo SPA uses of the real library:
 *   Stripe(publishableKey).createEmbeddedCheckoutPage({fetchClientSecret})
 *     -> Promise<{mount(selectorOrElement), destroy()}>
 * mount() renders a small card form; paying completes the session at the sandbox and navigates
 * to the session's return_url with {CHECKOUT_SESSION_ID} filled in. A declined card shows
 * Stripe's error message in the form.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  var SANDBOX = script && script.src ? new URL(script.src).origin : window.location.origin;
  var STYLE_ID = "sandbox-checkout-style";
  var CSS =
    ".sandbox-checkout{font:15px/1.4 system-ui,sans-serif;border:1px solid #d0d5dd;" +
    "border-radius:8px;padding:16px;max-width:420px;background:#fff;color:#1a1f36}" +
    ".sandbox-checkout h3{margin:0 0 8px;font-size:16px}" +
    ".sandbox-checkout .sandbox-badge{font-size:11px;background:#ffde92;border-radius:4px;" +
    "padding:1px 6px;margin-left:6px}" +
    ".sandbox-checkout ul{list-style:none;padding:0;margin:0 0 12px}" +
    ".sandbox-checkout li{display:flex;justify-content:space-between}" +
    ".sandbox-checkout label{display:block;margin:8px 0 2px;font-size:13px}" +
    ".sandbox-checkout input{width:100%;box-sizing:border-box;padding:8px;border:1px solid #d0d5dd;" +
    "border-radius:6px;font:inherit}" +
    ".sandbox-checkout .sandbox-row{display:flex;gap:8px}" +
    ".sandbox-checkout button{margin-top:12px;width:100%;padding:10px;border:0;border-radius:6px;" +
    "background:#635bff;color:#fff;font:inherit;cursor:pointer}" +
    ".sandbox-checkout button[disabled]{opacity:.6}" +
    ".sandbox-checkout-error{color:#df1b41;margin-top:8px;min-height:1em}";

  function formatAmount(amount, currency) {
    try {
      return new Intl.NumberFormat(undefined, { style: "currency", currency: currency.toUpperCase() })
        .format(amount / 100);
    } catch (e) {
      return (amount / 100).toFixed(2) + " " + currency.toUpperCase();
    }
  }

  function element(tag, attributes, text) {
    var node = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (name) {
      node.setAttribute(name, attributes[name]);
    });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function field(labelText, attributes) {
    var wrapper = element("div");
    var id = attributes.id;
    wrapper.appendChild(element("label", { for: id }, labelText));
    wrapper.appendChild(element("input", attributes));
    return wrapper;
  }

  function sessionIdFrom(clientSecret) {
    var index = clientSecret.indexOf("_secret_");
    if (index <= 0) throw new Error("IntegrationError: invalid client secret");
    return clientSecret.slice(0, index);
  }

  function request(method, path, body) {
    return fetch(SANDBOX + path, {
      method: method,
      headers: body ? { "Content-Type": "application/json" } : {},
      body: body ? JSON.stringify(body) : undefined,
    }).then(function (response) {
      return response.json().then(function (json) {
        if (!response.ok) {
          var error = new Error((json.error && json.error.message) || "Payment failed");
          error.stripe = json.error;
          throw error;
        }
        return json;
      });
    });
  }

  var mounted = null;

  function EmbeddedCheckout(clientSecretPromise) {
    this._clientSecret = clientSecretPromise;
    this._container = null;
    this._destroyed = false;
  }

  EmbeddedCheckout.prototype.mount = function (target) {
    var container = typeof target === "string" ? document.querySelector(target) : target;
    if (!container) throw new Error("IntegrationError: mount target not found: " + target);
    if (mounted && mounted !== this) {
      throw new Error("IntegrationError: only one embedded checkout can be mounted at a time");
    }
    mounted = this;
    this._container = container;
    var self = this;
    container.innerHTML = "";
    var root = element("div", { class: "sandbox-checkout", "data-testid": "sandbox-checkout" });
    root.appendChild(element("p", {}, "Loading checkout…"));
    container.appendChild(root);
    this._clientSecret
      .then(function (clientSecret) {
        var sessionId = sessionIdFrom(clientSecret);
        var query = "?client_secret=" + encodeURIComponent(clientSecret);
        return request("GET", "/sandbox/checkout/sessions/" + sessionId + query).then(function (s) {
          if (!self._destroyed) self._render(root, s, clientSecret);
        });
      })
      .catch(function (error) {
        root.innerHTML = "";
        root.appendChild(element("p", { class: "sandbox-checkout-error", role: "alert" },
          error.message));
      });
  };

  EmbeddedCheckout.prototype._render = function (root, session, clientSecret) {
    root.innerHTML = "";
    var title = element("h3", {}, "Pay " + formatAmount(session.amount_total, session.currency));
    title.appendChild(element("span", { class: "sandbox-badge" }, "SANDBOX"));
    root.appendChild(title);
    var list = element("ul");
    session.line_items.forEach(function (item) {
      var row = element("li");
      row.appendChild(element("span", {}, item.quantity + " × " + item.description));
      row.appendChild(element("span", {}, formatAmount(item.amount_total, session.currency)));
      list.appendChild(row);
    });
    root.appendChild(list);
    if (session.status !== "open") {
      root.appendChild(element("p", { class: "sandbox-checkout-error", role: "alert" },
        "This Checkout Session is " + session.status + "."));
      return;
    }
    var form = element("form", { novalidate: "" });
    form.appendChild(field("Card number", {
      id: "sandbox-card-number", name: "cardnumber", inputmode: "numeric",
      autocomplete: "cc-number", placeholder: "4242 4242 4242 4242",
    }));
    var row = element("div", { class: "sandbox-row" });
    row.appendChild(field("Expiry (MM / YY)", {
      id: "sandbox-card-expiry", name: "exp-date", autocomplete: "cc-exp", placeholder: "12 / 34",
    }));
    row.appendChild(field("CVC", {
      id: "sandbox-card-cvc", name: "cvc", inputmode: "numeric", autocomplete: "cc-csc",
      placeholder: "123",
    }));
    form.appendChild(row);
    var button = element("button", { type: "submit", id: "sandbox-pay" },
      "Pay " + formatAmount(session.amount_total, session.currency));
    form.appendChild(button);
    var message = element("div", { class: "sandbox-checkout-error", role: "alert",
      id: "sandbox-checkout-error" });
    form.appendChild(message);
    root.appendChild(form);

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      message.textContent = "";
      var expiry = form.querySelector("#sandbox-card-expiry").value.split("/");
      button.disabled = true;
      request("POST", "/sandbox/checkout/sessions/" + session.id + "/complete", {
        client_secret: clientSecret,
        card_number: form.querySelector("#sandbox-card-number").value.replace(/\s+/g, ""),
        exp_month: (expiry[0] || "").trim(),
        exp_year: (expiry[1] || "").trim(),
        cvc: form.querySelector("#sandbox-card-cvc").value.trim(),
      })
        .then(function (result) {
          if (result.return_url) {
            window.location.assign(result.return_url);
          } else {
            message.textContent = "Payment complete.";
          }
        })
        .catch(function (error) {
          message.textContent = error.message;
          button.disabled = false;
        });
    });
  };

  EmbeddedCheckout.prototype.unmount = function () {
    if (this._container) this._container.innerHTML = "";
    if (mounted === this) mounted = null;
  };

  EmbeddedCheckout.prototype.destroy = function () {
    this.unmount();
    this._destroyed = true;
  };

  function Stripe(publishableKey) {
    if (!(this instanceof Stripe)) return new Stripe(publishableKey);
    if (typeof publishableKey !== "string" || publishableKey.indexOf("pk_test_") !== 0) {
      throw new Error("IntegrationError: the sandbox accepts only pk_test_ publishable keys");
    }
    if (!document.getElementById(STYLE_ID)) {
      var style = element("style", { id: STYLE_ID });
      style.textContent = CSS;
      document.head.appendChild(style);
    }
    this._key = publishableKey;
  }

  Stripe.prototype.createEmbeddedCheckoutPage = function (options) {
    if (!options || typeof options.fetchClientSecret !== "function") {
      return Promise.reject(new Error("IntegrationError: fetchClientSecret is required"));
    }
    var secret = Promise.resolve().then(options.fetchClientSecret);
    return secret.then(function () {
      return new EmbeddedCheckout(secret);
    });
  };
  // The older name of the same call.
  Stripe.prototype.initEmbeddedCheckout = Stripe.prototype.createEmbeddedCheckoutPage;

  Stripe.sandbox = true;
  window.Stripe = Stripe;
})();
