// Headless Chromium (Debian's) driven by playwright-core against the chat
// page of `edgewasm serve target/guests/openai-server.wasm`: type a prompt,
// send it, and watch the answer arrive in pieces. Run by
// tests/tests/browser.rs.
//
// Usage: node chat_page.cjs BASE_URL SCREENSHOT.png
const { chromium } = require('playwright-core');

(async () => {
  const [base, shot] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = await browser.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(base + '/');
    // The model list comes from /v1/models.
    await page.waitForFunction(() => document.querySelectorAll('#model option').length > 0);
    const model = await page.$eval('#model', (s) => s.value);
    // Count how many times the answer's text changes while it streams.
    await page.evaluate(() => {
      window.__updates = [];
      new MutationObserver(() => {
        const a = document.querySelector('.msg.assistant');
        if (a) window.__updates.push([performance.now(), a.textContent.length]);
      }).observe(document.getElementById('messages'), { childList: true, subtree: true, characterData: true });
    });
    await page.fill('#prompt', 'Write three sentences about small computers.');
    await page.click('#send');
    await page.waitForSelector('.stats', { timeout: 120000 });
    const answer = await page.$eval('.msg.assistant', (d) => d.textContent);
    const stats = await page.$eval('.stats', (d) => d.textContent);
    const updates = await page.evaluate(() => window.__updates);
    const lengths = [...new Set(updates.map((u) => u[1]))].filter((n) => n > 0);
    await page.screenshot({ path: shot, fullPage: true });
    const failed = (await page.$$('.msg.error')).length > 0;
    // Streamed: the answer grew in several steps, not in one.
    const ok = answer.length > 0 && lengths.length >= 3 && errors.length === 0 && !failed;
    console.log(JSON.stringify({ ok, model, answer, stats, distinct_lengths: lengths.length, errors }));
    process.exit(ok ? 0 : 1);
  } finally {
    await browser.close();
  }
})().catch((e) => { console.error(e); process.exit(2); });
