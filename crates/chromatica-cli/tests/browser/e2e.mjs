// End-to-end test of the `chromatica serve` web page in a real browser:
// Debian's headless Chromium (/usr/bin/chromium, never downloaded) driven
// by playwright-core. It indexes a folder of generated images, picks two
// colours, sees results with thumbnails, clicks one (search by that image),
// drops a file, checks that a hostile file name is shown as text, and
// saves a screenshot that must not be blank.
//
//   node e2e.mjs PATH/TO/chromatica [SCREENSHOT.png]
import { chromium } from "playwright-core";
import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, writeFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const binary = process.argv[2];
const shot = process.argv[3] || "serve-e2e.png";
if (!binary) { console.error("usage: node e2e.mjs CHROMATICA_BINARY [SCREENSHOT]"); process.exit(2); }
const deadline = setTimeout(() => { console.error("FAIL: over 180 s"); cleanup(1); }, 180_000);

let server, browser;
const tmp = mkdtempSync(join(tmpdir(), "chromatica-e2e-"));
function cleanup(code) {
  clearTimeout(deadline);
  Promise.resolve(browser && browser.close()).catch(() => {}).finally(() => {
    if (server) server.kill("SIGTERM");
    rmSync(tmp, { recursive: true, force: true });
    process.exit(code);
  });
}
function fail(msg) { console.error("FAIL: " + msg); cleanup(1); }
function check(cond, msg) { if (!cond) throw new Error(msg); }

// A 24-bit BMP, left half colour a, right half colour b (w × h).
function bmp(w, h, a, b) {
  const row = Math.ceil((w * 3) / 4) * 4;
  const buf = Buffer.alloc(54 + row * h);
  buf.write("BM", 0); buf.writeUInt32LE(buf.length, 2); buf.writeUInt32LE(54, 10);
  buf.writeUInt32LE(40, 14); buf.writeInt32LE(w, 18); buf.writeInt32LE(h, 22);
  buf.writeUInt16LE(1, 26); buf.writeUInt16LE(24, 28); buf.writeUInt32LE(row * h, 34);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const c = x < w / 2 ? a : b, o = 54 + y * row + x * 3;
    buf[o] = c[2]; buf[o + 1] = c[1]; buf[o + 2] = c[0];
  }
  return buf;
}

const PALETTE = [[230, 25, 75], [60, 180, 75], [255, 225, 25], [67, 99, 216], [245, 130, 48], [145, 30, 180], [70, 240, 240], [240, 50, 230]];
const photos = join(tmp, "photos");
mkdirSync(photos);
let n = 0;
for (let i = 0; i < PALETTE.length; i++) for (let j = 0; j < PALETTE.length; j += 3) {
  writeFileSync(join(photos, `p${i}-${j}.bmp`), bmp(96, 64, PALETTE[i], PALETTE[j])); n++;
}
// A file name that is HTML: it must be shown as text, never parsed.
const HOSTILE = "<img src=x onerror=alert(1)>.bmp";
writeFileSync(join(photos, HOSTILE), bmp(96, 64, [10, 20, 30], [10, 20, 30])); n++;

async function start() {
  server = spawn(binary, ["serve", join(tmp, "idx"), "--bind", "127.0.0.1:0", "--watch", photos, "--watch-interval", "0"], { stdio: ["ignore", "pipe", "inherit"] });
  const base = await new Promise((resolve, reject) => {
    let out = "";
    server.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/\S+)/);
      if (m) resolve(m[1]);
    });
    server.on("exit", (c) => reject(new Error("serve exited " + c)));
  });
  for (let t = 0; t < 300; t++) {
    const h = await (await fetch(base + "/health")).json();
    if (h.index_size === n) return base;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("the folder was not indexed");
}

async function main() {
  const base = await start();
  const profile = join(tmp, "profile");
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--disable-quic", "--no-first-run"],
    viewport: { width: 1200, height: 900 },
  });
  browser = context;
  const page = context.pages()[0] || (await context.newPage());
  const problems = [];
  page.on("dialog", (d) => { problems.push("a dialog opened: " + d.message()); d.dismiss(); });
  page.on("pageerror", (e) => problems.push("page error: " + e.message));
  page.on("console", (m) => { if (m.type() === "error" && !/Failed to load resource/.test(m.text())) problems.push("console: " + m.text()); });
  // Nothing but the server itself is ever asked for.
  page.on("request", (r) => { if (!r.url().startsWith(base)) problems.push("external request: " + r.url()); });

  await page.goto(base + "/");
  await page.waitForFunction((n) => document.getElementById("index-size").textContent === String(n), n);

  // Pick two colours (red and blue), red weighted a little more. By EMD a
  // half-red, half-blue photo is then nearest (5% of the mass moves); at
  // 80/20 the all-red photo would be (20% moves, against 30%).
  const picks = page.locator(".color-row .pick");
  check((await picks.count()) === 2, "two colour rows at start");
  await picks.nth(0).fill("#e6194b");
  await picks.nth(1).fill("#4363d8");
  await page.locator(".color-row .weight").nth(0).fill("55");
  await page.locator(".color-row .weight").nth(1).fill("45");
  check((await page.locator(".weight-value").nth(0).textContent()) === "55%", "weights shown as shares");
  // Add a third colour and remove it again.
  await page.click("#add-color");
  check((await picks.count()) === 3, "a colour was added");
  await page.locator(".color-row .remove").nth(2).click();
  check((await picks.count()) === 2, "a colour was removed");

  await page.click("#search");
  await page.waitForSelector(".card");
  const cards = page.locator(".card");
  check((await cards.count()) === n, `all ${n} images returned (k 50): ${await cards.count()}`);
  const firstName = await cards.nth(0).locator(".name").textContent();
  check(/p(0-3|3-0)\.bmp$/.test(firstName), "a red+blue photo first, got " + firstName);
  check(/distance \d/.test(await cards.nth(0).locator(".distance").textContent()), "distance shown");
  check((await cards.nth(0).locator(".palette span").count()) >= 2, "palette shown");
  check(/^\d+(\.\d)?$/.test(await page.locator("#query-time").textContent()), "query time shown");
  // Thumbnails loaded and are not blank: the first is red on the left, blue on the right.
  await page.waitForFunction(() => [...document.querySelectorAll(".card img.thumb")].slice(0, 6).every((i) => i.complete && i.naturalWidth > 0));
  const px = await page.evaluate(() => {
    const img = document.querySelector(".card img.thumb");
    const c = document.createElement("canvas");
    c.width = img.naturalWidth; c.height = img.naturalHeight;
    const g = c.getContext("2d"); g.drawImage(img, 0, 0);
    return [Array.from(g.getImageData(5, 5, 1, 1).data), Array.from(g.getImageData(c.width - 5, 5, 1, 1).data)];
  });
  check(px[0][0] > 180 && px[0][2] < 120 && px[1][2] > 170 && px[1][0] < 120, "thumbnail pixels " + JSON.stringify(px));

  // The hostile name is text.
  check((await page.locator('img[src="x"]').count()) === 0, "a file name became HTML");
  const names = await page.locator(".card .name").allTextContents();
  check(names.some((t) => t.endsWith(HOSTILE)), "the hostile name is shown as text");

  // Click a result: search by that image; it comes back first.
  const target = cards.nth(3);
  const id = await target.getAttribute("data-id");
  await target.click();
  await page.waitForFunction((id) => document.querySelector(".card") && document.querySelector(".card").dataset.id === id, id);
  const dist0 = await page.locator(".card").nth(0).locator(".distance").textContent();
  check(/distance 0\.0000/.test(dist0), "the clicked image is its own nearest: " + dist0);

  // Drop (here: choose) an image file: a green/yellow one comes first.
  await page.setInputFiles("#file", { name: "drop.bmp", mimeType: "image/bmp", buffer: bmp(96, 64, PALETTE[1], PALETTE[1]) });
  await page.waitForFunction(() => /\/p1-\d+\.bmp$/.test((document.querySelector(".card .name") || {}).textContent || ""));
  // A bad upload shows the server's error, not a crash.
  await page.setInputFiles("#file", { name: "bad.png", mimeType: "image/png", buffer: Buffer.from("not an image") });
  await page.waitForFunction(() => document.getElementById("error").textContent.length > 0);

  // Back to the colour search for the screenshot.
  await page.click("#search");
  await page.waitForFunction(() => document.getElementById("error").textContent === "" && document.querySelectorAll(".card img.thumb").length > 0);
  await page.waitForFunction(() => [...document.querySelectorAll(".card img.thumb")].slice(0, 6).every((i) => i.complete && i.naturalWidth > 0));
  const png = await page.screenshot({ path: shot, fullPage: false });
  // Non-blank: load the screenshot into the page and count its colours.
  const colours = await page.evaluate(async (b64) => {
    const img = new Image();
    img.src = "data:image/png;base64," + b64;
    await img.decode();
    const c = document.createElement("canvas");
    c.width = img.width; c.height = img.height;
    const g = c.getContext("2d"); g.drawImage(img, 0, 0);
    const d = g.getImageData(0, 0, c.width, c.height).data;
    const seen = new Set();
    for (let i = 0; i < d.length; i += 4 * 7) seen.add((d[i] >> 3) << 10 | (d[i + 1] >> 3) << 5 | (d[i + 2] >> 3));
    return seen.size;
  }, png.toString("base64"));
  check(colours > 40, "the screenshot looks blank: " + colours + " colours");
  check(statSync(shot).size > 20_000, "the screenshot file is small");
  check(problems.length === 0, problems.join("; "));
  console.log(`PASS: ${n} images, clicked ${id}, screenshot ${shot} (${colours} colours)`);
}

main().then(() => cleanup(0), (e) => fail(e.stack || String(e)));
