// The checkout page with Stripe Elements, in Debian's Chromium (driven by
// playwright-core), run by tests/it/stripe.rs against the real binary on a
// local server that speaks Stripe's API.
//
// js.stripe.com is out of reach here, so the page's request for Stripe.js
// is answered with a stand-in that offers the part of Stripe.js's
// documented interface the page uses: `Stripe(key)`, `elements().create
// ("card").mount(selector)` and `createPaymentMethod({type, card})`, which
// resolves with `{paymentMethod: {id}}` or `{error: {message}}`. The page's
// own script is what is checked: it loads Stripe.js, mounts the card over
// the test cards, says a refused card, and posts the payment method.

import { chromium } from "playwright-core";

function env(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

const base = env("BASE_URL");
const email = env("GUEST_EMAIL");
const password = env("PASSWORD");
const listing = env("LISTING_ID");
const checkIn = env("CHECK_IN");
const checkOut = env("CHECK_OUT");
const publishableKey = env("PUBLISHABLE_KEY");

setTimeout(() => {
  console.error("the Stripe Elements check timed out");
  process.exit(2);
}, 180_000).unref();

function check(condition, message) {
  if (!condition) throw new Error(message);
}

function step(name) {
  console.log(`ok: ${name}`);
}

async function submit(page, selector) {
  const arrived = page.waitForNavigation();
  await page.click(selector);
  await arrived;
}

/** Stripe.js's interface as the page uses it; the card number is a plain input. */
const standIn = `
window.Stripe = function (key) {
  window.__stripeKey = key;
  return {
    elements: function () {
      return {
        create: function (type) {
          var input = document.createElement("input");
          input.id = "stand-in-card";
          input.setAttribute("aria-label", "Card number");
          input.dataset.type = type;
          return {
            mount: function (target) {
              (typeof target === "string" ? document.querySelector(target) : target).appendChild(input);
            },
            number: function () { return input.value.replace(/\\s/g, ""); }
          };
        }
      };
    },
    createPaymentMethod: function (options) {
      if (options.type !== "card") return Promise.resolve({ error: { message: "type" } });
      if (options.card.number() === "4242424242424242") {
        return Promise.resolve({ paymentMethod: { id: "pm_card_visa", object: "payment_method" } });
      }
      return Promise.resolve({ error: { type: "card_error", message: "Your card number is incorrect." } });
    }
  };
};`;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox"],
});
try {
  const context = await browser.newContext({ locale: "en-US" });
  let stripeJsAsked = 0;
  await context.route("https://js.stripe.com/v3/", (route) => {
    stripeJsAsked += 1;
    return route.fulfill({ contentType: "application/javascript", body: standIn });
  });
  const page = await context.newPage();
  const refusedByCsp = [];
  page.on("console", (m) => {
    if (m.type() === "error" && /Content Security Policy/.test(m.text())) refusedByCsp.push(m.text());
  });
  await page.goto(`${base}/sign-in`);
  await page.fill("#email", email);
  await page.fill("#password", password);
  await submit(page, "main button[type=submit]");
  step("signed in");

  await page.goto(`${base}/listings/${listing}?check_in=${checkIn}&check_out=${checkOut}&guests=2`);
  await submit(page, "form.book button[type=submit]");
  check(/\/checkout\//.test(page.url()), `booked, then the checkout: ${page.url()}`);
  await page.waitForSelector("#stand-in-card", { timeout: 15_000 });
  check(stripeJsAsked === 1, `Stripe.js asked for once, not ${stripeJsAsked} times`);
  check((await page.evaluate(() => window.__stripeKey)) === publishableKey, "Stripe.js got the publishable key");
  check(await page.locator("fieldset.test-cards").isHidden(), "the test cards give way to the card field");
  check(await page.locator("#card-field").isVisible(), "the card field shows");
  check(refusedByCsp.length === 0, `the page's CSP lets Stripe.js in: ${refusedByCsp.join("; ")}`);
  step("the card field is Stripe's, over the test cards");

  await page.fill("#stand-in-card", "4000 0000");
  await page.click("form.pay button[type=submit]");
  await page.waitForFunction(() => document.getElementById("card-error").textContent !== "");
  check(
    (await page.locator("#card-error").textContent()) === "Your card number is incorrect.",
    "Stripe's refusal is said by the field",
  );
  check(/\/checkout\//.test(page.url()), "nothing posted for a refused card");
  step("a card Stripe.js refuses is said, nothing posted");

  await page.fill("#stand-in-card", "4242 4242 4242 4242");
  await submit(page, "form.pay button[type=submit]");
  check(/\/trips\//.test(page.url()), `paid, then the trip: ${page.url()}`);
  let status = "";
  for (let i = 0; i < 60 && status !== "Confirmed"; i++) {
    status = ((await page.locator("#trip-status").first().textContent()) || "").trim();
    if (status !== "Confirmed") {
      await page.waitForTimeout(250);
      await page.reload();
    }
  }
  check(status === "Confirmed", `the trip shows ${JSON.stringify(status)}`);
  step("paid with the payment method Stripe.js made; the trip is confirmed");
  step("Stripe Elements in the checkout");
} finally {
  await browser.close();
}
