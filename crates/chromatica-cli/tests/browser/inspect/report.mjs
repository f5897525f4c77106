// Renders an `inspect --html` report in a real browser — Debian's headless
// Chromium (/usr/bin/chromium, never downloaded) driven by playwright-core —
// with the network cut off (the page must be self-contained), checks its
// four SVG plots laid out with marks in them, and that its screenshot is not
// blank (many colours, not one background).
//
//   node report.mjs REPORT.html [SCREENSHOT.png]
import { chromium } from "playwright-core";
import { mkdtempSync, rmSync, statSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const report = process.argv[2];
const shot = process.argv[3] || "inspect-report.png";
if (!report) { console.error("usage: node report.mjs REPORT.html [SCREENSHOT]"); process.exit(2); }
const deadline = setTimeout(() => { console.error("FAIL: over 120 s"); done(1); }, 120_000);
const profile = mkdtempSync(join(tmpdir(), "chromatica-inspect-chromium-"));
let context;
function done(code) {
  clearTimeout(deadline);
  Promise.resolve(context && context.close()).catch(() => {}).finally(() => {
    rmSync(profile, { recursive: true, force: true });
    process.exit(code);
  });
}
function check(cond, msg) { if (!cond) throw new Error(msg); }

async function main() {
  const html = readFileSync(report, "utf8");
  check(!/<script/i.test(html), "the report holds a script");
  check(!/(src|href)=["']?https?:/i.test(html), "the report fetches something");
  context = await chromium.launchPersistentContext(profile, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--disable-quic", "--no-first-run"],
    viewport: { width: 760, height: 1000 },
  });
  const page = await context.newPage();
  const requests = [];
  await page.route("**/*", (route) => {
    const u = route.request().url();
    if (u.startsWith("file:") || u.startsWith("data:")) return route.continue();
    requests.push(u);
    return route.abort();
  });
  await page.goto("file://" + resolve(report));
  const plots = await page.evaluate(() => [...document.querySelectorAll("svg")].map((s) => {
    const r = s.getBoundingClientRect();
    return { w: r.width, h: r.height, marks: s.querySelectorAll("rect,circle,line").length };
  }));
  check(plots.length === 4, "expected 4 plots, found " + plots.length);
  for (const p of plots) check(p.w > 100 && p.h > 100 && p.marks > 3, "a plot is empty: " + JSON.stringify(p));
  await page.screenshot({ path: shot, fullPage: true });
  const b64 = readFileSync(shot).toString("base64");
  const stats = await page.evaluate(async (b64) => {
    const img = new Image();
    img.src = "data:image/png;base64," + b64;
    await img.decode();
    const c = document.createElement("canvas");
    c.width = img.naturalWidth; c.height = img.naturalHeight;
    const g = c.getContext("2d");
    g.drawImage(img, 0, 0);
    const d = g.getImageData(0, 0, c.width, c.height).data;
    const seen = new Set();
    let ink = 0;
    for (let i = 0; i < d.length; i += 4) {
      seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
      if (d[i] + d[i + 1] + d[i + 2] < 600) ink++;
    }
    return { colours: seen.size, ink: ink / (d.length / 4), w: c.width, h: c.height };
  }, b64);
  check(stats.colours > 40, "the screenshot looks blank: " + stats.colours + " colours");
  check(stats.ink > 0.02, "the screenshot is almost all background: " + stats.ink);
  check(requests.length === 0, "the page asked the network for " + requests.join(", "));
  console.log(`PASS: ${plots.length} plots, screenshot ${shot} ${stats.w}x${stats.h} (${stats.colours} colours, ${(100 * stats.ink).toFixed(1)}% ink, ${statSync(shot).size} bytes)`);
}
main().then(() => done(0), (e) => { console.error("FAIL: " + e.message); done(1); });
