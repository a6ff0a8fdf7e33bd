// HomeTrip's pages in a real browser (Debian's Chromium, driven by
// playwright-core), run by tests/it/browser.rs against the real binary.
//
// A guest signs up, confirms the emailed link, searches, opens a listing
// with the stay priced, books, pays through the 3-D Secure step, sees the
// trip confirmed and cancels it with the refund shown first; a guest
// requests a stay with the keyboard only; the host signs in with the
// keyboard only and accepts it; the host lists a new home with a photo,
// blocks nights and reads the months' figures. The guest's journey runs
// again with JavaScript disabled. With PHASE=after_stays (the test clock
// moved past the stays), guest and host review the keyboard journey's stay
// and an admin approves the held review and refunds part of the booking.
// axe-core checks every page of the journey: no serious or critical
// violation may remain. Every step asserts what the page shows.

import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

function env(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

const base = env("BASE_URL");
const outbox = env("OUTBOX");
const password = env("PASSWORD");
const hostEmail = env("HOST_EMAIL");
const title = env("LISTING_TITLE");
const word = env("LISTING_WORD");
const requestListing = env("REQUEST_LISTING_ID");
// Three stays, one per booking of the journey: [{check_in, check_out}, ...].
const stays = JSON.parse(env("STAYS"));
// The keyboard journey's guest, whose stay the second phase reviews.
const keysGuestEmail = env("KEYS_GUEST_EMAIL");
// `main`, or `after_stays` once the test clock has moved past the stays.
const phase = process.env.PHASE || "main";

// The whole journey has a deadline: a hung page fails the test, never hangs it.
setTimeout(() => {
  console.error("the browser journey timed out");
  process.exit(2);
}, 540_000).unref();

const violations = [];

function check(condition, message) {
  if (!condition) throw new Error(message);
}

function step(name) {
  console.log(`ok: ${name}`);
}

/** axe-core on the page as it is now; serious and critical violations are kept. */
async function audit(page, name) {
  await page.addScriptTag({ content: axeSource });
  const found = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const result = await axe.run(document, { resultTypes: ["violations"] });
    return result.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.map((n) => n.target.join(" ")).slice(0, 5),
    }));
  });
  for (const v of found.filter((v) => v.impact === "serious" || v.impact === "critical")) {
    violations.push({ page: name, ...v });
  }
  const ids = found.map((v) => `${v.id}/${v.impact}`).join(", ");
  step(`axe: ${name} (${found.length} findings${ids ? `: ${ids}` : ""}; ${violations.length} serious so far)`);
}

/** Clicks `selector` (or presses a key) and waits for the page it leads to. */
async function submit(page, selector) {
  const arrived = page.waitForNavigation();
  if (selector.startsWith("key:")) await page.keyboard.press(selector.slice(4));
  else await page.click(selector);
  await arrived;
}

async function text(page, selector) {
  return ((await page.locator(selector).first().textContent()) || "").trim();
}

async function expectText(page, expected, what) {
  const body = await page.locator("body").innerText();
  check(body.includes(expected), `${what}: expected ${JSON.stringify(expected)} on ${page.url()}, got:\n${body}`);
}

/** Quoted-printable, as lettre writes bodies. */
function decodeQp(raw) {
  const joined = raw.replace(/=\r?\n/g, "");
  const bytes = [];
  for (let i = 0; i < joined.length; i++) {
    const hex = joined.slice(i + 1, i + 3);
    if (joined[i] === "=" && /^[0-9A-F]{2}$/i.test(hex)) {
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(joined[i]));
    }
  }
  return Buffer.from(bytes).toString("utf8");
}

/** The path and query of the `path` link in the newest email to `to`. */
async function emailedLink(to, path) {
  const dir = join(outbox);
  for (let attempt = 0; attempt < 200; attempt++) {
    let files = [];
    try {
      files = readdirSync(dir).filter((f) => f.endsWith(".eml")).sort().reverse();
    } catch {
      files = [];
    }
    for (const file of files) {
      const raw = readFileSync(join(dir, file), "utf8");
      if (!raw.split(/\r?\n/).some((line) => line === `To: ${to}`)) continue;
      const match = decodeQp(raw).match(new RegExp(`${path}\\?token=[A-Za-z0-9_-]+`));
      if (match) return match[0];
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no email to ${to} with a ${path} link`);
}

/** Presses Tab until the focused element satisfies `wanted` (keyboard-only use). */
async function tabTo(page, wanted, what) {
  for (let i = 0; i < 40; i++) {
    await page.keyboard.press("Tab");
    const focused = await page.evaluate(() => {
      const el = document.activeElement;
      return el ? { id: el.id, tag: el.tagName, text: (el.textContent || "").trim() } : null;
    });
    if (focused && wanted(focused)) return;
  }
  throw new Error(`Tab never reached ${what} on ${page.url()}`);
}

/** Reloads a trip page until its status reads `status` (payments settle in the background). */
async function tripStatus(page, status) {
  let shown = "";
  for (let i = 0; i < 60; i++) {
    shown = await text(page, "#trip-status");
    if (shown === status) return;
    await page.waitForTimeout(500);
    await page.reload();
  }
  throw new Error(`the trip at ${page.url()} shows ${JSON.stringify(shown)}, not ${JSON.stringify(status)}`);
}

async function signUp(page, email, name, js) {
  await page.goto(`${base}/sign-up`);
  if (js) await audit(page, "sign-up");
  await page.fill("#display_name", name);
  await page.fill("#email", email);
  await page.fill("#password", password);
  await submit(page, "main button[type=submit]");
  check(page.url() === `${base}/`, `signed up, then home: ${page.url()}`);
  check((await text(page, ".who")) === name, "signed up and in: the header shows the name");
  step(`signed up as ${name}`);

  const link = await emailedLink(email, "/verify-email");
  await page.goto(`${base}${link}`);
  if (js) await audit(page, "verify-email");
  await submit(page, "main button[type=submit]");
  await expectText(page, "Your email is confirmed", "the emailed link confirmed the address");
  step("confirmed the emailed link");
}

/** From the home page's search to a priced listing page. */
async function searchAndOpen(page, stay, js) {
  await page.goto(`${base}/`);
  if (js) await audit(page, "home");
  if (js) {
    // Suggestions arrive as the visitor types (the script asks autocomplete).
    await page.locator("#q").pressSequentially(title.slice(0, 12), { delay: 20 });
    await page.waitForFunction(
      (expected) => [...document.querySelectorAll("#q-suggestions option")].some((o) => o.value === expected),
      title,
      { timeout: 10_000 },
    );
    step("the search box suggested the listing's title");
  }
  await page.fill("#q", word);
  await page.fill("#check_in", stay.check_in);
  await page.fill("#check_out", stay.check_out);
  await page.fill("#guests", "2");
  await submit(page, "form.search button[type=submit]");
  check(page.url().includes("/search?"), `searched: ${page.url()}`);
  if (js) await audit(page, "search");
  const card = page.locator(".card a", { hasText: title });
  check((await card.count()) === 1, `the search for ${word} lists ${title}`);
  const arrived = page.waitForNavigation();
  await card.click();
  await arrived;
  check((await text(page, "h1")) === title, "the listing page shows its title");
  check((await text(page, ".prices dt")) !== "", "the listing shows its prices");
  await expectText(page, "2 nights", "the stay from the search is priced");
  await expectText(page, "Full refund until", "the refund timeline shows before paying");
  if (js) await audit(page, "listing");
  step("searched and opened the priced listing");
}

async function guestJourney(browser, { js, label, stay }) {
  const context = await browser.newContext({ javaScriptEnabled: js, bypassCSP: js, locale: "en-US" });
  const page = await context.newPage();
  const email = `e2e-${label}-${Date.now()}@example.com`;
  await signUp(page, email, `Ada ${label}`, js);
  await searchAndOpen(page, stay, js);

  await submit(page, "form.book button[type=submit]");
  check(page.url().includes("/checkout/"), `booked, then checkout: ${page.url()}`);
  await expectText(page, "Confirm and pay", "the checkout page");
  const total = await text(page, "[data-total]");
  check(/€/.test(total), `the checkout shows the total, got ${total}`);
  if (js) await audit(page, "checkout");

  // A declined card says so and stays on checkout.
  await page.check("input[value=pm_card_chargeDeclined]");
  await submit(page, "form.pay button[type=submit]");
  await expectText(page, "Your card was declined", "a declined card");
  // A card asking for 3-D Secure: the bank's step, then back to the trip.
  await page.check("input[value=pm_card_authenticationRequired]");
  await submit(page, "form.pay button[type=submit]");
  await expectText(page, "Your bank asks you to confirm", "the 3-D Secure step");
  if (js) await audit(page, "3-D Secure");
  await submit(page, "main button[type=submit]");
  check(page.url().includes("/trips/"), `the bank returned to the trip: ${page.url()}`);
  await tripStatus(page, "Confirmed");
  check((await text(page, "h1")) === title, "the trip names the listing");
  const refund = await text(page, "#cancel-refund");
  check(refund.includes("€"), `the refund is shown before cancelling, got ${JSON.stringify(refund)}`);
  if (js) await audit(page, "trip");
  step("paid through 3-D Secure; the trip is confirmed");

  await page.goto(`${base}/trips`);
  check((await page.locator(".booking", { hasText: title }).count()) >= 1, "the trip is listed under trips");
  if (js) await audit(page, "trips");
  const opened = page.waitForNavigation();
  await page.locator(".booking a", { hasText: title }).first().click();
  await opened;
  await submit(page, "form[action$='/cancel'] button[type=submit]");
  const cancelled = await text(page, "#cancelled");
  check(cancelled.includes("€"), `cancelled with the refund shown, got ${JSON.stringify(cancelled)}`);
  check((await text(page, "#trip-status")) === "Cancelled by you", "the trip reads cancelled");
  step("cancelled the trip");
  await context.close();
  return email;
}

/** A guest requests a stay and a host accepts it, both with the keyboard only. */
async function keyboardJourney(browser, stay) {
  const guestContext = await browser.newContext({ locale: "en-US", bypassCSP: true });
  const guest = await guestContext.newPage();
  const email = keysGuestEmail;
  await signUp(guest, email, "Keyboard Guest", true);
  await guest.goto(`${base}/listings/${requestListing}?check_in=${stay.check_in}&check_out=${stay.check_out}&guests=2`);
  await tabTo(guest, (el) => el.tag === "BUTTON" && el.text === "Request to book", "the request button");
  await submit(guest, "key:Enter");
  check(guest.url().includes("/checkout/"), `requested, then checkout: ${guest.url()}`);
  await tabTo(guest, (el) => el.tag === "BUTTON" && el.text === "Request to book", "the checkout button");
  await submit(guest, "key:Enter");
  check(guest.url().includes("/trips/"), `paid, then the trip: ${guest.url()}`);
  await tripStatus(guest, "Waiting for the host's answer");
  const trip = guest.url();
  const booking = trip.split("/trips/")[1];
  step("requested a stay with the keyboard only");

  const hostContext = await browser.newContext({ locale: "en-US", bypassCSP: true });
  const host = await hostContext.newPage();
  await host.goto(`${base}/sign-in`);
  await audit(host, "sign-in");
  await tabTo(host, (el) => el.id === "email", "the email field");
  await host.keyboard.type(hostEmail);
  await host.keyboard.press("Tab");
  await host.keyboard.type(password);
  await submit(host, "key:Enter");
  check(host.url() === `${base}/`, `signed in, then home: ${host.url()}`);
  check((await text(host, ".who")) !== "", "the host signed in with the keyboard only");
  step("the host signed in with the keyboard only");

  // An API key for a channel manager: made on the account page, shown once.
  await host.goto(`${base}/account/api-keys`);
  await host.fill("#key-name", "Journey channel manager");
  await host.check("input[name='scope'][value='calendar:read']");
  await submit(host, "form[action='/account/api-keys'] button[type='submit']");
  const shownKey = await host.inputValue("#new-key");
  check(shownKey.startsWith("htk_"), `the new key is shown once: ${shownKey.slice(0, 8)}`);
  await audit(host, "api keys");
  step("the host made an API key");

  await host.goto(`${base}/host/reservations`);
  await audit(host, "host reservations");
  const accept = host.locator(`form[action='/host/reservations/${booking}/accept'] button`);
  check((await accept.count()) === 1, "the request waits for the host's answer");
  await accept.focus();
  await submit(host, "key:Enter");
  check(host.url() === `${base}/host/reservations`, `answered, then the list: ${host.url()}`);
  check((await host.locator(`form[action='/host/reservations/${booking}/accept']`).count()) === 0, "answered");
  // The guest, still on the trip's page, is told in the header as it happens.
  await guest.waitForSelector("#toast a", { timeout: 30_000 });
  check((await text(guest, "#toast a")) !== "", "the toast says what happened");
  check(parseInt(await text(guest, "#header-unread"), 10) >= 1, "the header counts it unread");
  step("the guest was told live in the header");
  await guest.goto(trip);
  await tripStatus(guest, "Confirmed");
  step("the host accepted; the guest's trip is confirmed");
  await guestContext.close();
  await hostContext.close();
}

/** A guest asks the host from the listing page; the host answers in the inbox. */
async function messagesJourney(browser) {
  const guestContext = await browser.newContext({ locale: "en-US", bypassCSP: true });
  const guest = await guestContext.newPage();
  await signUp(guest, `e2e-ask-${Date.now()}@example.com`, "Curious Guest", true);
  await searchAndOpen(guest, stays[2], true);
  await guest.fill("#contact-body", "Is there a cot for a baby?");
  await submit(guest, "form.contact button[type=submit]");
  check(guest.url().includes("/inbox/"), `asked, then the conversation: ${guest.url()}`);
  await expectText(guest, "Is there a cot for a baby?", "the question shows in the conversation");
  await audit(guest, "conversation");
  const thread = guest.url();

  const hostContext = await browser.newContext({ locale: "en-US", bypassCSP: true });
  const host = await hostContext.newPage();
  await host.goto(`${base}/sign-in`);
  await host.fill("#email", hostEmail);
  await host.fill("#password", password);
  await submit(host, "main button[type=submit]");
  await host.goto(`${base}/inbox`);
  await audit(host, "inbox");
  const line = host.locator(".conversation a", { hasText: "Curious Guest" });
  check((await line.count()) === 1, "the host's inbox lists the question");
  check((await line.innerText()).includes("1 unread"), "unread until opened");
  const live = () => document.querySelector("section.thread")?.dataset.live === "true";
  await guest.waitForFunction(live, null, { timeout: 10_000 });
  const opened = host.waitForNavigation();
  await line.click();
  await opened;
  await host.waitForFunction(live, null, { timeout: 10_000 });
  // The host opened it: the guest's page shows the question seen, live.
  await guest.locator("li.mine .seen").waitFor({ timeout: 10_000 });
  step("the guest saw the question read, without reloading");

  await host.locator("#body").pressSequentially("Yes, and a high chair.", { delay: 15 });
  await guest.locator(".typing").waitFor({ state: "visible", timeout: 10_000 });
  step("the guest saw the host typing");
  // Sent without leaving the page: it comes back over the socket.
  await host.click("form.reply button[type=submit]");
  await host.locator("li.mine", { hasText: "Yes, and a high chair." }).waitFor({ timeout: 10_000 });
  // The frame can come back before the POST's answer, which clears the box.
  await host.waitForFunction(() => document.querySelector("#body").value === "", null, { timeout: 10_000 });
  step("the reply box is cleared once sent");
  check(host.url() === thread, `the host stayed on the conversation: ${host.url()}`);
  await guest.locator("li.message:not(.mine)", { hasText: "Yes, and a high chair." }).waitFor({ timeout: 10_000 });
  step("the reply arrived on the guest's page, live");
  // The guest's open page read it: the host sees it seen, live.
  await host.locator("li.mine .seen").waitFor({ timeout: 10_000 });
  step("the host saw the reply read, without reloading");

  await guest.goto(thread);
  await expectText(guest, "Yes, and a high chair.", "the reply is there after a reload");
  check((await guest.locator(".message.mine .seen").count()) === 1, "the guest's question shows as seen");
  step("a question and its answer through the inbox");
  await guestContext.close();
  await hostContext.close();
}

/** Signs the host in through the form. */
async function hostSignIn(browser, js = true) {
  const context = await browser.newContext({ locale: "en-US", bypassCSP: true, javaScriptEnabled: js });
  const host = await context.newPage();
  await host.goto(`${base}/sign-in`);
  await host.fill("#email", hostEmail);
  await host.fill("#password", password);
  await submit(host, "main button[type=submit]");
  return { context, host };
}

/** `days` after `date` (YYYY-MM-DD), as YYYY-MM-DD. */
function addDays(date, days) {
  const d = new Date(`${date}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
}

/**
 * The host lists a new home from the form with a photo and publishes it,
 * blocks nights in its calendar, and reads the figures of the months with
 * the stay the keyboard journey confirmed.
 */
async function hostJourney(browser, { js }) {
  // axe runs in the page: without JavaScript, the pages were audited already.
  const a11y = js ? audit : async () => {};
  const { context, host } = await hostSignIn(browser, js);
  await host.goto(`${base}/host/listings`);
  await a11y(host, "host listings");
  await submit(host, "a[href='/host/listings/new']");
  await a11y(host, "new listing form");
  await host.fill("#title", js ? "Cabane du journey" : "Cabane du journey sans script");
  await host.fill("#description", "Une cabane dans les arbres.");
  await host.selectOption("#property_type", "cabin");
  await host.fill("#line1", "1 chemin des Bois");
  await host.fill("#city", "Annecy");
  await host.fill("#postal_code", "74000");
  await host.fill("#country", "FR");
  await host.fill("#lat", "45.8992");
  await host.fill("#lon", "6.1294");
  await host.check("input[name=amenity][value=wifi]");
  await host.fill("#nightly_price", "75.50");
  await host.fill("#cleaning_fee", "15");
  await submit(host, "form.listing-form button[type=submit]");
  check(/\/host\/listings\/[0-9a-f-]+\/edit\?done=created/.test(host.url()), `created, then its edit page: ${host.url()}`);
  await expectText(host, "Draft created.", "the draft is made");
  check((await text(host, "[data-status]")) === "Draft", "a draft until published");
  const edit = host.url().split("?")[0];
  const listing = edit.split("/")[5];

  // A photo from the host's other listing, uploaded through the form.
  await host.goto(`${base}/listings/${requestListing}`);
  const src = await host.locator(".photos img").first().getAttribute("src");
  const photo = await host.request.get(`${base}${src}`);
  check(photo.ok(), `the photo to upload: ${src}`);
  await host.goto(edit);
  await host.setInputFiles("#file", { name: "cabane.jpg", mimeType: "image/jpeg", buffer: await photo.body() });
  await submit(host, "form[data-upload] button[type=submit]");
  await expectText(host, "Photos added.", "the photo is uploaded");
  check((await host.locator(".host-photos img").count()) === 1, "the photo shows on the edit page");
  await a11y(host, "listing edit form");
  await submit(host, `form[action='/host/listings/${listing}/publish'] button`);
  await expectText(host, "Published: guests can find and book it.", "published from its edit page");
  check(
    (await host.locator(`li[data-listing='${listing}'] [data-status]`).innerText()) === "Published",
    "the list shows it published",
  );
  step(`the host listed a new home with a photo and published it${js ? "" : " (no JavaScript)"}`);

  // Two nights blocked from the calendar's form.
  const first = stays[2].check_in;
  await host.goto(`${base}/host/listings/${listing}/calendar?month=${first.slice(0, 7)}`);
  await a11y(host, "host calendar");
  await host.fill("#from", first);
  await host.fill("#to", addDays(first, 2));
  await host.check("input[name=action][value=block]");
  await submit(host, "#calendar-form button[type=submit]");
  await expectText(host, "The calendar is updated.", "the calendar is saved");
  const blocked = await host.locator("td[data-state=blocked]").count();
  check(blocked === 2, `two nights show blocked, not ${blocked}`);
  const night = await host.request.get(`${base}/api/v1/listings/${listing}/calendar?from=${first}&to=${addDays(first, 2)}`);
  const days = (await night.json()).days;
  check(days.every((d) => d.available === false), `the API reads them blocked: ${JSON.stringify(days)}`);
  step("the host blocked two nights in the calendar");

  // The months of the confirmed stay: its nights and revenue, as charts and a table.
  const from = new Date().toISOString().slice(0, 10);
  const to = addDays(stays[1].check_out, 30);
  let booked = "0";
  for (let i = 0; i < 40 && booked === "0"; i++) {
    await host.goto(`${base}/host/earnings?from=${from}&to=${to}`);
    booked = await text(host, "[data-figure=nights_booked]");
    if (booked === "0") await host.waitForTimeout(250);
  }
  check(booked !== "0", "the confirmed stay's nights are counted");
  check((await host.locator("#revenue-chart rect.bar").count()) > 0, "revenue by month as a chart");
  check((await host.locator("#by-month tbody tr").count()) > 0, "and as a table");
  const revenue = await text(host, "[data-figure=revenue]");
  check(revenue.startsWith("€") && revenue !== "€0", `the revenue is shown: ${revenue}`);
  await a11y(host, "earnings");
  step(`the host read the months' figures: ${booked} nights booked, ${revenue}`);
  await host.goto(`${base}/host/payouts`);
  await a11y(host, "payouts");
  check((await host.locator("#payouts tr[data-payout]").count()) >= 1, "the confirmed stay's payout is listed");
  step(`the host read the payouts${js ? "" : " (no JavaScript)"}`);
  await context.close();
}

/** Signs in through the form as `email`, in a new context. */
async function signIn(browser, email, pass) {
  const context = await browser.newContext({ locale: "en-US", bypassCSP: true });
  const page = await context.newPage();
  await page.goto(`${base}/sign-in`);
  await page.fill("#email", email);
  await page.fill("#password", pass);
  await submit(page, "main button[type=submit]");
  check((await text(page, ".who")) !== "", `${email} signed in`);
  return { context, page };
}

/** Ticks every rating of the review form at `stars` and writes `comment`. */
async function fillReview(page, stars, comment) {
  for (const group of await page.locator("fieldset.stars").all()) {
    await group.locator(`input[value='${stars}']`).check();
  }
  await page.fill("#comment", comment);
}

/**
 * After the stays (the test clock moved on): the keyboard journey's guest
 * and the host review the stay, the guest's review is held for a phone
 * number, an admin approves it and refunds part of the booking; the review
 * shows on the listing page.
 */
async function afterStaysJourney(browser) {
  const { context: guestContext, page: guest } = await signIn(browser, keysGuestEmail, password);
  await guest.goto(`${base}/reviews`);
  await audit(guest, "reviews to write");
  const line = guest.locator("li[data-booking]", { hasText: "Moulin" });
  check((await line.count()) === 1, "the completed stay waits for the guest's review");
  const booking = await line.getAttribute("data-booking");
  await submit(guest, `a[href='/reviews/${booking}']`);
  await audit(guest, "review form");
  await fillReview(guest, 5, "Un moulin magnifique, appelez-moi au 06 12 34 56 78 pour en parler.");
  await submit(guest, "#review-form button[type=submit]");
  await expectText(guest, "Thank you: your review is in.", "the guest's review is sent");
  step("the guest reviewed the stay");

  const { context: hostContext, host } = await hostSignIn(browser);
  await host.goto(`${base}/reviews`);
  await submit(host, `a[href='/reviews/${booking}']`);
  check((await host.locator("input[name=house_rules]").count()) === 5, "the host rates the guest's house rules");
  await fillReview(host, 4, "A careful and friendly guest.");
  await submit(host, "#review-form button[type=submit]");
  await expectText(host, "Thank you: your review is in.", "the host's review is sent");
  step("the host reviewed the guest");

  const { context: adminContext, page: admin } = await signIn(browser, env("ADMIN_EMAIL"), env("ADMIN_PASSWORD"));
  await admin.goto(`${base}/admin`);
  await audit(admin, "admin overview");
  await admin.goto(`${base}/admin/reviews`);
  await audit(admin, "admin reviews");
  const held = admin.locator("li[data-review]", { hasText: "Un moulin magnifique" });
  check((await held.count()) === 1, "the guest's review is held for its phone number");
  check((await held.innerText()).includes("contact_details"), "and says why");
  await submit(admin, "li[data-review] form[action$='/approve'] button");
  await expectText(admin, "Approved: the review is published.", "approved");
  step("the admin approved the held review");

  await admin.goto(`${base}/admin/bookings?id=${booking}`);
  await audit(admin, "admin bookings");
  await admin.fill("#amount", "20");
  await admin.fill("#reason", "The heating failed one night");
  await submit(admin, "#refund-form button[type=submit]");
  check((await text(admin, "[data-figure=amount]")) === "€20", "€20 refunded");
  step("the admin refunded part of the booking");
  // The edge writes the entry once the page has answered: reload until it is in.
  let logged = false;
  for (let i = 0; i < 40 && !logged; i++) {
    await admin.goto(`${base}/admin/audit`);
    logged = (await admin.locator("body").innerText()).includes("The heating failed one night");
    if (!logged) await admin.waitForTimeout(250);
  }
  await audit(admin, "admin audit");
  await expectText(admin, "The heating failed one night", "the refund is in the audit log");
  // The console's other pages, for axe: listings, appeals, failed deliveries.
  await admin.goto(`${base}/admin/listings?q=${encodeURIComponent(word)}`);
  await audit(admin, "admin listings");
  check((await admin.locator("li[data-listing]").count()) >= 1, "the journey's listing is found by its word");
  await admin.goto(`${base}/admin/appeals`);
  await audit(admin, "admin appeals");
  await admin.goto(`${base}/admin/events`);
  await audit(admin, "admin events");

  // Both reviews are in and the held one approved: it is public.
  let shown = false;
  for (let i = 0; i < 60 && !shown; i++) {
    await guest.goto(`${base}/listings/${requestListing}`);
    shown = (await guest.locator("li.review", { hasText: "Un moulin magnifique" }).count()) === 1;
    if (!shown) await guest.waitForTimeout(250);
  }
  check(shown, "the approved review shows on the listing page");
  step("the review is published on the listing page");
  await guestContext.close();
  await hostContext.close();
  await adminContext.close();
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  // Root in a container: Chromium's sandbox needs user namespaces it may not have.
  args: ["--no-sandbox"],
});
try {
  if (phase === "after_stays") {
    await afterStaysJourney(browser);
  } else {
    await guestJourney(browser, { js: true, label: "js", stay: stays[0] });
    await keyboardJourney(browser, stays[1]);
    await hostJourney(browser, { js: true });
    await messagesJourney(browser);
    await guestJourney(browser, { js: false, label: "nojs", stay: stays[2] });
    await hostJourney(browser, { js: false });
  }
} finally {
  await browser.close();
}
if (violations.length > 0) {
  console.error(JSON.stringify(violations, null, 2));
  throw new Error(`axe-core found ${violations.length} serious or critical violations`);
}
step(phase === "after_stays" ? "the journey after the stays" : "the whole journey");
