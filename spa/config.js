// Where the page loads Stripe.js from, and the publishable key. These are the `make dev`
// values (the local stripe_sandbox); a deployment replaces this file with its STRIPE_JS_URL
// (https://js.stripe.com/...) and STRIPE_PUBLISHABLE_KEY.
window.FACTURATION_CONFIG = {
  apiBase: "/api/v1",
  stripeJsUrl: "http://localhost:12111/v3/",
  stripePublishableKey: "pk_test_sandbox",
};
