// The demo single-page app: plain JavaScript, no build step. It talks only to the gateway
// (/api/v1/...) with the user's bearer token, kept in sessionStorage for this tab only.
(function () {
  "use strict";

  var config = window.FACTURATION_CONFIG || {};
  var API = config.apiBase || "/api/v1";
  var TOKEN_KEY = "facturation.token";
  // What the subscription looked like when the user left for the portal: on the way back the
  // panel asks again until the portal's change (delivered to facturation by webhook) shows.
  var PORTAL_KEY = "facturation.portal-left-with";
  var LIVE = ["incomplete", "trialing", "active", "past_due", "unpaid", "paused"];
  var state = { products: [], basket: null, checkout: null, subscription: null };

  function $(selector) { return document.querySelector(selector); }

  function show(id, visible) { $(id).hidden = !visible; }

  function say(text, kind) {
    var box = $("#message");
    box.textContent = text || "";
    box.className = kind === "info" ? "info" : "";
    box.hidden = !text;
  }

  function money(amount, currency) {
    try {
      var format = new Intl.NumberFormat("en", { style: "currency", currency: currency.toUpperCase() });
      // Minor units: JPY has none, EUR and USD two, KWD three.
      return format.format(amount / Math.pow(10, format.resolvedOptions().maximumFractionDigits));
    } catch (e) {
      return (amount / 100).toFixed(2) + " " + currency.toUpperCase();
    }
  }

  // " / month", " / 3 months", " / year": a plan's billing period after its price.
  function perInterval(recurring) {
    if (!recurring) return "";
    var count = recurring.interval_count || 1;
    return " / " + (count === 1 ? recurring.interval : count + " " + recurring.interval + "s");
  }

  function price(product) {
    if (product.unit_amount === 0 && !product.recurring) return "free";
    return money(product.unit_amount, product.currency) + perInterval(product.recurring);
  }

  function productById(id) {
    for (var i = 0; i < state.products.length; i += 1) {
      if (state.products[i].id === id) return state.products[i];
    }
    return null;
  }

  function day(unixSeconds) {
    return new Date(unixSeconds * 1000).toLocaleDateString();
  }

  function cell(row, text, className) {
    var td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    row.appendChild(td);
    return td;
  }

  function statusBadge(status) {
    var span = document.createElement("span");
    span.className = "status status-" + status;
    span.textContent = status;
    return span;
  }

  function token() { return sessionStorage.getItem(TOKEN_KEY); }

  // fetch() with the token and problem+json errors turned into thrown Errors.
  function api(method, path, body) {
    var headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (token()) headers.Authorization = "Bearer " + token();
    return fetch(API + path, {
      method: method,
      headers: headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    }).then(function (response) {
      return response.text().then(function (text) {
        var data = text ? JSON.parse(text) : null;
        if (response.status === 401 && token()) {
          sessionStorage.removeItem(TOKEN_KEY);
          render();
        }
        if (!response.ok) {
          var problem = data || {};
          var error = new Error(problem.detail || problem.title || "HTTP " + response.status);
          error.status = response.status;
          throw error;
        }
        return data;
      });
    });
  }

  function login(email, password) {
    return api("POST", "/auth/login", { email: email, password: password }).then(function (t) {
      sessionStorage.setItem(TOKEN_KEY, t.access_token);
    });
  }

  // --- views -------------------------------------------------------------------------------

  function render() {
    var loggedIn = Boolean(token());
    var params = new URLSearchParams(window.location.search);
    var returning = loggedIn && params.has("session_id");
    show("#auth-view", !loggedIn);
    show("#session", loggedIn);
    show("#shop-view", loggedIn && !returning);
    show("#return-view", returning);
    show("#invoices-view", loggedIn);
    show("#orders-view", loggedIn);
    show("#products-view", loggedIn);
    show("#subscription-view", loggedIn);
    if (!loggedIn) return;
    api("GET", "/users/me").then(function (user) {
      $("#user-email").textContent = user.email;
    }).catch(function () {});
    // The catalog names the products of the other panels, on the return page too.
    loadProducts().then(function () {
      if (returning) {
        showReturn(params.get("session_id"));
      } else if (params.get("portal") === "return") {
        backFromPortal();
      } else {
        loadSubscription();
      }
      loadInvoices();
      loadOrders();
    });
  }

  function loadProducts() {
    return api("GET", "/products").then(function (catalog) {
      state.products = catalog.products;
      var body = $("#products tbody");
      body.innerHTML = "";
      catalog.products.forEach(function (product) {
        var row = document.createElement("tr");
        var name = cell(row, product.name);
        if (product.description) {
          var hint = document.createElement("div");
          hint.className = "hint";
          hint.textContent = product.description;
          name.appendChild(hint);
        }
        var amount = cell(row, product.unit_amount === 0 && !product.recurring ? "free"
          : money(product.unit_amount, product.currency), "amount");
        row.dataset.productId = product.id;
        if (product.recurring) {
          // A plan is bought alone: its own button, no quantity.
          var every = document.createElement("span");
          every.className = "interval";
          every.textContent = perInterval(product.recurring);
          amount.appendChild(every);
          var subscribe = document.createElement("button");
          subscribe.type = "button";
          subscribe.className = "subscribe";
          subscribe.id = "subscribe-" + product.id;
          subscribe.dataset.planId = product.id;
          subscribe.textContent = "Subscribe";
          subscribe.addEventListener("click", function () {
            validateBasket([{ product_id: product.id, quantity: 1 }]);
          });
          cell(row, "").appendChild(subscribe);
          body.appendChild(row);
          return;
        }
        var qty = document.createElement("input");
        qty.type = "number";
        qty.min = "0";
        qty.max = "99";
        qty.value = "0";
        qty.dataset.productId = product.id;
        qty.setAttribute("aria-label", "Quantity of " + product.name);
        cell(row, "").appendChild(qty);
        body.appendChild(row);
      });
    }).catch(function (error) { say("Could not load products: " + error.message); });
  }

  function basketItems() {
    var items = [];
    document.querySelectorAll("#products input[data-product-id]").forEach(function (input) {
      var quantity = parseInt(input.value, 10);
      if (quantity > 0) items.push({ product_id: input.dataset.productId, quantity: quantity });
    });
    return items;
  }

  // The basket of the quantity inputs, or ``items`` (a plan's Subscribe button).
  function validateBasket(items) {
    say("");
    items = Array.isArray(items) ? items : basketItems();
    if (items.length === 0) {
      say("Pick at least one product.");
      return Promise.resolve();
    }
    return api("POST", "/basket/validate", { items: items }).then(function (basket) {
      state.basket = { items: items, priced: basket };
      var body = $("#basket-lines tbody");
      body.innerHTML = "";
      basket.lines.forEach(function (line) {
        var row = document.createElement("tr");
        cell(row, line.name);
        cell(row, String(line.quantity));
        cell(row, money(line.amount, line.currency), "amount");
        body.appendChild(row);
      });
      var plan = items.length === 1 ? productById(items[0].product_id) : null;
      $("#basket-total").textContent = money(basket.amount_total, basket.currency)
        + perInterval(plan && plan.recurring);
      $("#basket-customer").textContent = basket.needs_stripe_customer
        ? "A Stripe customer will be created for you at checkout."
        : "Billed to your Stripe customer " + basket.user.user_stripe_id + ".";
      show("#basket", true);
      show("#checkout-card", false);
    }).catch(function (error) { say("Basket refused: " + error.message); });
  }

  function loadStripeJs() {
    if (window.Stripe) return Promise.resolve(window.Stripe);
    return new Promise(function (resolve, reject) {
      var script = document.createElement("script");
      script.src = config.stripeJsUrl;
      script.onload = function () { resolve(window.Stripe); };
      script.onerror = function () { reject(new Error("Stripe.js could not be loaded")); };
      document.head.appendChild(script);
    });
  }

  function startCheckout() {
    say("");
    if (!state.basket) return Promise.resolve();
    $("#checkout-button").disabled = true;
    var returnUrl = window.location.origin + "/?session_id={CHECKOUT_SESSION_ID}";
    return api("POST", "/billing/checkout-sessions", {
      items: state.basket.items,
      return_url: returnUrl,
    }).then(function (session) {
      if (!session.client_secret) {
        say("Nothing to pay: your free order is complete.", "info");
        loadInvoices();
        loadOrders();
        return null;
      }
      return loadStripeJs().then(function (Stripe) {
        if (state.checkout) state.checkout.destroy();
        return Stripe(config.stripePublishableKey).createEmbeddedCheckoutPage({
          fetchClientSecret: function () { return Promise.resolve(session.client_secret); },
        });
      }).then(function (checkout) {
        state.checkout = checkout;
        show("#checkout-card", true);
        checkout.mount("#checkout");
      });
    }).catch(function (error) {
      say("Checkout failed: " + error.message);
    }).then(function () {
      $("#checkout-button").disabled = false;
    });
  }

  function renderStatus(status) {
    var target = $("#return-status");
    target.textContent = status.status || "unknown";
    target.dataset.status = status.status || "";
    $("#return-payment-status").textContent = status.payment_status || "unknown";
    $("#return-invoice").textContent = status.invoice_id || "not yet issued";
    // The status request runs the fulfil step itself: a paid order shows as paid at once.
    var order = $("#return-order");
    order.textContent = status.order_status || "unknown";
    order.dataset.status = status.order_status || "";
  }

  // Stripe redirects here before its webhooks have necessarily arrived: ask again for a while
  // until the session is complete and its invoice is listed as paid.
  function showReturn(sessionId, attempt) {
    attempt = attempt || 0;
    return api("GET", "/billing/checkout-sessions/" + encodeURIComponent(sessionId))
      .then(function (status) {
        renderStatus(status);
        return Promise.all([loadInvoices(), loadOrders(), loadSubscription()]).then(function (got) {
          var paid = got[0].some(function (invoice) {
            return invoice.id === status.invoice_id && invoice.status === "paid";
          });
          // A plan's order is settled once its subscription is listed and past incomplete.
          var order = got[1].filter(function (o) { return o.id === status.order_id; })[0];
          var settled = !isPlanOrder(order) || (got[2] !== null && got[2].status !== "incomplete");
          if (!(status.status === "complete" && paid && settled) && attempt < 30) {
            setTimeout(function () { showReturn(sessionId, attempt + 1); }, 1000);
          }
        });
      })
      .catch(function (error) { say("Could not read the payment: " + error.message); });
  }

  // The invoice PDF needs the bearer token, so a plain link cannot fetch it: fetch it here and
  // hand the browser the bytes as a download named as the server names it.
  function downloadInvoicePdf(invoice, link) {
    link.dataset.state = "loading";
    var headers = { Accept: "application/pdf" };
    if (token()) headers.Authorization = "Bearer " + token();
    return fetch(API + "/billing/invoices/" + encodeURIComponent(invoice.id) + "/pdf", {
      headers: headers,
    }).then(function (response) {
      if (!response.ok) {
        return response.json().then(function (problem) {
          throw new Error(problem.detail || problem.title || response.statusText);
        }, function () { throw new Error(response.statusText); });
      }
      var disposition = response.headers.get("Content-Disposition") || "";
      var named = /filename="([^"]+)"/.exec(disposition);
      return response.blob().then(function (blob) {
        var url = URL.createObjectURL(blob);
        var save = document.createElement("a");
        save.href = url;
        save.download = named ? named[1] : (invoice.number || invoice.id) + ".pdf";
        document.body.appendChild(save);
        save.click();
        save.remove();
        setTimeout(function () { URL.revokeObjectURL(url); }, 10000);
        link.dataset.state = "done";
      });
    }).catch(function (error) {
      link.dataset.state = "failed";
      say("Could not download the invoice: " + error.message);
    });
  }

  function pdfLink(invoice) {
    var link = document.createElement("a");
    link.href = "#";
    link.className = "invoice-pdf";
    link.dataset.invoiceId = invoice.id;
    link.textContent = "PDF";
    link.title = "Download invoice " + invoice.number + " as PDF";
    link.addEventListener("click", function (event) {
      event.preventDefault();
      downloadInvoicePdf(invoice, link);
    });
    return link;
  }

  function loadInvoices() {
    return api("GET", "/billing/invoices").then(function (page) {
      var body = $("#invoices tbody");
      body.innerHTML = "";
      page.data.forEach(function (invoice) {
        var row = document.createElement("tr");
        row.dataset.invoiceId = invoice.id;
        row.dataset.status = invoice.status || "";
        var number = cell(row, "");
        if (invoice.hosted_invoice_url) {
          var link = document.createElement("a");
          link.href = invoice.hosted_invoice_url;
          link.target = "_blank";
          link.rel = "noopener";
          link.textContent = invoice.number || invoice.id;
          number.appendChild(link);
        } else {
          number.textContent = invoice.number || invoice.id;
        }
        cell(row, new Date(invoice.created * 1000).toLocaleDateString());
        cell(row, money(invoice.total, invoice.currency), "amount");
        cell(row, money(invoice.amount_paid, invoice.currency), "amount");
        cell(row, "").appendChild(statusBadge(invoice.status || "unknown"));
        // A draft has no number and so no document yet.
        var documentCell = cell(row, invoice.number ? "" : "—");
        if (invoice.number) documentCell.appendChild(pdfLink(invoice));
        body.appendChild(row);
      });
      show("#no-invoices", page.data.length === 0);
      return page.data;
    }).catch(function (error) {
      say("Could not load invoices: " + error.message);
      return [];
    });
  }

  function loadOrders() {
    loadEntitlements();
    return api("GET", "/billing/orders").then(function (page) {
      var body = $("#orders tbody");
      body.innerHTML = "";
      page.data.forEach(function (order) {
        var row = document.createElement("tr");
        row.dataset.orderId = order.id;
        row.dataset.status = order.status;
        cell(row, order.lines.map(function (line) {
          return line.quantity + " × " + (line.name || line.product_id);
        }).join(", "));
        cell(row, new Date(order.created_at).toLocaleDateString());
        cell(row, money(order.amount_total, order.currency), "amount");
        cell(row, money(order.amount_refunded, order.currency), "amount refunded");
        cell(row, "").appendChild(statusBadge(order.status));
        body.appendChild(row);
      });
      show("#no-orders", page.data.length === 0);
      return page.data;
    }).catch(function (error) {
      say("Could not load orders: " + error.message);
      return [];
    });
  }

  function isPlanOrder(order) {
    return Boolean(order) && order.lines.some(function (line) {
      var product = productById(line.product_id);
      return Boolean(product && product.recurring);
    });
  }

  // --- the subscription --------------------------------------------------------------------

  // The one to show: the live one, else the newest that ended (the list is newest first).
  function currentSubscription(list) {
    var live = list.filter(function (sub) { return LIVE.indexOf(sub.status) >= 0; });
    return live[0] || list[0] || null;
  }

  function renderSubscription(sub) {
    state.subscription = sub;
    show("#subscription", Boolean(sub));
    show("#no-subscription", !sub);
    if (!sub) return;
    var box = $("#subscription");
    var live = LIVE.indexOf(sub.status) >= 0;
    box.dataset.subscriptionId = sub.id;
    box.dataset.status = sub.status;
    box.dataset.cancelAtPeriodEnd = String(sub.cancel_at_period_end);
    var plan = productById(sub.product_id);
    $("#subscription-plan").textContent = plan ? plan.name : (sub.product_id || sub.id);
    $("#subscription-price").textContent = plan ? price(plan) : "";
    var status = $("#subscription-status");
    status.innerHTML = "";
    status.dataset.status = sub.status;
    status.appendChild(statusBadge(sub.status));
    var end = $("#subscription-period-end");
    end.dataset.value = sub.current_period_end === null ? "" : String(sub.current_period_end);
    if (!live) {
      end.textContent = "Ended" + (sub.canceled_at ? " on " + day(sub.canceled_at) : "") + ".";
    } else if (sub.current_period_end === null) {
      end.textContent = "";
    } else {
      end.textContent = (sub.cancel_at_period_end ? "Ends on " : "Renews on ")
        + day(sub.current_period_end) + ".";
    }
    show("#subscription-cancel-note", live && sub.cancel_at_period_end);
    show("#subscription-cancel", live && !sub.cancel_at_period_end && sub.status !== "incomplete");
    show("#subscription-resume", live && sub.cancel_at_period_end);
    show("#subscription-cancel-now", live && sub.status !== "incomplete");
  }

  function loadSubscription() {
    return api("GET", "/billing/subscriptions").then(function (page) {
      var sub = currentSubscription(page.data);
      renderSubscription(sub);
      return sub;
    }).catch(function (error) {
      say("Could not load your subscription: " + error.message);
      return null;
    });
  }

  function snapshot(sub) {
    return sub ? JSON.stringify([sub.id, sub.status, sub.cancel_at_period_end]) : "";
  }

  // The portal's changes reach facturation as webhooks, maybe after the browser is back: ask
  // again for a while until the subscription differs from what it was when the user left.
  function backFromPortal(attempt) {
    attempt = attempt || 0;
    var before = sessionStorage.getItem(PORTAL_KEY);
    return loadSubscription().then(function (sub) {
      if (before !== null && snapshot(sub) === before && attempt < 20) {
        setTimeout(function () { backFromPortal(attempt + 1); }, 1000);
        return;
      }
      sessionStorage.removeItem(PORTAL_KEY);
      loadEntitlements();
    });
  }

  function changeSubscription(path, body, button) {
    say("");
    var sub = state.subscription;
    if (!sub) return Promise.resolve();
    button.disabled = true;
    return api("POST", "/billing/subscriptions/" + encodeURIComponent(sub.id) + path, body)
      .then(function (changed) {
        renderSubscription(changed);
        loadEntitlements();
      })
      .catch(function (error) { say("Could not change the subscription: " + error.message); })
      .then(function () { button.disabled = false; });
  }

  function openPortal() {
    say("");
    var button = $("#subscription-portal");
    button.disabled = true;
    var returnUrl = window.location.origin + "/?portal=return";
    return api("POST", "/billing/portal-sessions", { return_url: returnUrl }).then(function (portal) {
      sessionStorage.setItem(PORTAL_KEY, snapshot(state.subscription));
      window.location.assign(portal.url);
    }).catch(function (error) {
      button.disabled = false;
      say("Could not open the portal: " + error.message);
    });
  }

  function loadEntitlements() {
    return api("GET", "/billing/entitlements").then(function (page) {
      var names = {};
      state.products.forEach(function (product) { names[product.id] = product.name; });
      var body = $("#entitlements tbody");
      body.innerHTML = "";
      page.data.forEach(function (entitlement) {
        var row = document.createElement("tr");
        row.dataset.productId = entitlement.product_id;
        row.dataset.status = entitlement.status;
        cell(row, names[entitlement.product_id] || entitlement.product_id);
        cell(row, new Date(entitlement.granted_at).toLocaleDateString());
        cell(row, "").appendChild(statusBadge(entitlement.status));
        body.appendChild(row);
      });
      show("#no-entitlements", page.data.length === 0);
      return page.data;
    }).catch(function (error) {
      say("Could not load your products: " + error.message);
      return [];
    });
  }

  // --- wiring ------------------------------------------------------------------------------

  $("#login-form").addEventListener("submit", function (event) {
    event.preventDefault();
    say("");
    login($("#login-email").value, $("#login-password").value)
      .then(render)
      .catch(function (error) { say("Login failed: " + error.message); });
  });

  $("#register-form").addEventListener("submit", function (event) {
    event.preventDefault();
    say("");
    var email = $("#register-email").value;
    var password = $("#register-password").value;
    api("POST", "/auth/register", { name: $("#register-name").value, email: email,
      password: password })
      .then(function () { return login(email, password); })
      .then(render)
      .catch(function (error) { say("Registration failed: " + error.message); });
  });

  $("#logout").addEventListener("click", function () {
    var done = function () {
      sessionStorage.removeItem(TOKEN_KEY);
      window.location.assign("/");
    };
    api("POST", "/auth/logout").then(done, done);
  });

  $("#validate-basket").addEventListener("click", validateBasket);
  $("#checkout-button").addEventListener("click", startCheckout);
  $("#refresh-invoices").addEventListener("click", loadInvoices);
  $("#refresh-orders").addEventListener("click", loadOrders);
  $("#refresh-subscription").addEventListener("click", loadSubscription);
  $("#subscription-cancel").addEventListener("click", function (event) {
    changeSubscription("/cancel", { at_period_end: true }, event.currentTarget);
  });
  $("#subscription-cancel-now").addEventListener("click", function (event) {
    if (!window.confirm("End the subscription now? The plan stops at once.")) return;
    changeSubscription("/cancel", { at_period_end: false }, event.currentTarget);
  });
  $("#subscription-resume").addEventListener("click", function (event) {
    changeSubscription("/resume", undefined, event.currentTarget);
  });
  $("#subscription-portal").addEventListener("click", openPortal);

  render();
})();
