// PokeWatch dashboard: reads only the v1 API of the service that serves this page.
// The API key lives in sessionStorage (this tab only) and travels as X-API-Key.
"use strict";

(function () {
  const KEY_STORAGE = "pokewatch.apiKey";
  const SEARCH_DELAY_MS = 250;
  const DAY_SECONDS = 86400;
  const COLORS = {
    market: "#1f4e8c",
    fair: "#2e7d32",
    band: "rgba(46, 125, 50, 0.16)",
    bandEdge: "rgba(46, 125, 50, 0.45)",
    buy: "#1b7f3b",
    sell: "#c62828",
  };

  const $ = (id) => document.getElementById(id);
  const views = ["search-view", "card-view", "screener-view"];
  let chart = null;
  let history = null; // the card view's rows, all of them (the range filters them)
  let range = "all";
  let signal = "BUY";
  let searchTimer = null;
  let searchSerial = 0;

  class ApiError extends Error {
    constructor(status, body, retryAfter) {
      super(body.detail || `HTTP ${status}`);
      this.status = status;
      this.error = body.error || "error";
      this.retryAfter = retryAfter;
    }
  }

  function apiKey() {
    return sessionStorage.getItem(KEY_STORAGE);
  }

  async function api(path) {
    const response = await fetch(path, {
      headers: { "X-API-Key": apiKey() || "", Accept: "application/json" },
      cache: "no-cache",
    });
    if (!response.ok) {
      let body = {};
      try {
        body = await response.json();
      } catch (ignored) {
        body = {};
      }
      throw new ApiError(response.status, body, response.headers.get("Retry-After"));
    }
    return response.json();
  }

  function show(text) {
    const message = $("message");
    message.textContent = text;
    message.hidden = !text;
  }

  function explain(error) {
    if (!(error instanceof ApiError)) {
      show(`The service could not be reached: ${error.message}`);
      return;
    }
    if (error.status === 401) {
      sessionStorage.removeItem(KEY_STORAGE);
      show("The API key was not accepted (401). Enter a valid key.");
      askForKey();
    } else if (error.status === 403) {
      show(`This key may not read this (403): ${error.message}`);
    } else if (error.status === 429) {
      const wait = error.retryAfter ? `${error.retryAfter} s` : "a moment";
      show(`Too many requests (429): try again in ${wait}.`);
    } else {
      show(`${error.message} (${error.status} ${error.error})`);
    }
  }

  function freshness(answer) {
    const stale = $("stale");
    stale.hidden = !answer.stale;
    stale.textContent = answer.stale
      ? `These prices are stale: the newest collected day is ${answer.data_as_of}.`
      : "";
  }

  function money(value) {
    return value === null || value === undefined ? "n/a" : `$${Number(value).toFixed(2)}`;
  }

  function percent(value) {
    return value === null || value === undefined ? "n/a" : `${(value * 100).toFixed(2)} %`;
  }

  function element(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    if (className) node.className = className;
    return node;
  }

  function cardLink(entry) {
    const link = element("a", entry.name);
    link.href = `#/card/${encodeURIComponent(entry.card_id)}`;
    return link;
  }

  function showView(id) {
    for (const view of views) $(view).hidden = view !== id;
  }

  function askForKey() {
    showView(null);
    $("key-form").hidden = false;
    $("forget-key").hidden = true;
    $("key-input").focus();
  }

  // --- search ---------------------------------------------------------------------

  function scheduleSearch() {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(runSearch, SEARCH_DELAY_MS);
  }

  async function runSearch() {
    const text = $("search-input").value.trim();
    const results = $("search-results");
    const status = $("search-status");
    const serial = ++searchSerial;
    if (!text) {
      results.replaceChildren();
      status.textContent = "";
      return;
    }
    try {
      const page = await api(`/v1/cards?${new URLSearchParams({ q: text, limit: "10" })}`);
      if (serial !== searchSerial) return; // a newer search is on its way
      show("");
      freshness(page);
      results.replaceChildren(
        ...page.items.map((entry) => {
          const item = element("li");
          item.dataset.cardId = entry.card_id;
          item.append(cardLink(entry));
          const set = entry.set_code ? ` · set ${entry.set_code}` : "";
          item.append(element("span", ` ${money(entry.market_price)}${set}`, "meta"));
          if (entry.signal) item.append(element("span", entry.signal, `signal ${entry.signal}`));
          return item;
        }),
      );
      status.textContent =
        page.total === 0 ? "No match." : `${page.total} match${page.total === 1 ? "" : "es"}.`;
    } catch (error) {
      explain(error);
    }
  }

  // --- card view ------------------------------------------------------------------

  async function openCard(cardId) {
    showView("card-view");
    const path = `/v1/cards/${encodeURIComponent(cardId)}`;
    try {
      const [answer, rows] = await Promise.all([api(path), api(`${path}/history`)]);
      show("");
      freshness(answer);
      history = rows.rows;
      $("card-title").textContent = answer.name;
      describeAnswer(answer);
      drawChart();
    } catch (error) {
      explain(error);
    }
  }

  function describeAnswer(answer) {
    const fields = [
      ["Market price", `${money(answer.market_price)} on ${answer.price_date}`],
      ["Buy price (lowest listing)", money(answer.buy_price)],
      ["Fair price", money(answer.fair_price)],
      ["Fair band", `${money(answer.fair_low)} – ${money(answer.fair_high)}`],
      ["Signal", answer.signal || `none (${answer.reason || "not scored"})`],
      ["Deviation", percent(answer.deviation_pct)],
      ["Data as of", `${answer.data_as_of}${answer.stale ? " (stale)" : ""}`],
      ["History", `${answer.history_days} observed days`],
    ].filter(([name, value]) => name !== "Buy price (lowest listing)" || answer.buy_price !== null);
    $("card-answer").replaceChildren(
      ...fields.flatMap(([name, value]) => [element("dt", name), element("dd", value)]),
    );
    $("card-answer").dataset.signal = answer.signal || "";
  }

  function visibleRows() {
    if (range === "all" || history.length === 0) return history;
    const last = Date.parse(history[history.length - 1].date);
    const first = last - Number(range) * DAY_SECONDS * 1000;
    return history.filter((row) => Date.parse(row.date) > first);
  }

  function drawChart() {
    const rows = visibleRows();
    const time = rows.map((row) => Date.parse(row.date) / 1000);
    const value = (name) => rows.map((row) => row[name]);
    const marker = (label) =>
      rows.map((row) => (row.signal === label ? row.market_price : null));
    const data = [
      time,
      value("market_price"),
      value("fair_price"),
      value("fair_low"),
      value("fair_high"),
      marker("BUY"),
      marker("SELL"),
    ];
    const box = $("chart");
    const buys = data[5].filter((price) => price !== null).length;
    const sells = data[6].filter((price) => price !== null).length;
    box.dataset.points = String(rows.length);
    box.dataset.buyMarkers = String(buys);
    box.dataset.sellMarkers = String(sells);
    box.dataset.band = String(data[3].some((price) => price !== null));
    for (const button of document.querySelectorAll("[data-range]")) {
      button.setAttribute("aria-pressed", String(button.dataset.range === range));
    }
    summarize(rows, buys, sells);
    if (chart) chart.destroy();
    const dots = (color) => ({
      stroke: color,
      fill: color,
      paths: () => null,
      points: { show: true, size: 9, stroke: color, fill: color },
    });
    chart = new uPlot(
      {
        width: Math.max(box.clientWidth, 280),
        height: 320,
        scales: { x: { time: true } },
        series: [
          {},
          { label: "Market", stroke: COLORS.market, width: 2, spanGaps: true },
          { label: "Fair", stroke: COLORS.fair, width: 1.5, dash: [6, 4], spanGaps: true },
          { label: "Band low", stroke: COLORS.bandEdge, width: 1, spanGaps: true },
          { label: "Band high", stroke: COLORS.bandEdge, width: 1, spanGaps: true },
          { label: "BUY", ...dots(COLORS.buy) },
          { label: "SELL", ...dots(COLORS.sell) },
        ],
        bands: [{ series: [4, 3], fill: COLORS.band }],
        axes: [{}, { values: (self, ticks) => ticks.map((tick) => `$${tick}`) }],
        legend: { show: false },
      },
      data,
      box,
    );
  }

  function summarize(rows, buys, sells) {
    const caption = $("chart-summary");
    if (rows.length === 0) {
      caption.textContent = "No observed days in this range.";
      return;
    }
    const first = rows[0];
    const last = rows[rows.length - 1];
    caption.textContent =
      `Market price over ${rows.length} observed days, ${first.date} to ${last.date}: ` +
      `from ${money(first.market_price)} to ${money(last.market_price)}; ` +
      `the fair band on the last day ${money(last.fair_low)} – ${money(last.fair_high)}; ` +
      `${buys} BUY and ${sells} SELL signal${buys + sells === 1 ? "" : "s"} in the range.`;
  }

  // --- screener -------------------------------------------------------------------

  async function openScreener() {
    showView("screener-view");
    for (const button of document.querySelectorAll("[data-signal]")) {
      button.setAttribute("aria-pressed", String(button.dataset.signal === signal));
    }
    const select = $("set-select");
    try {
      if (select.options.length === 1) {
        const sets = await api("/v1/sets");
        select.append(
          ...sets.sets
            .filter((entry) => entry.set_code !== null)
            .map((entry) => {
              const option = element("option", `${entry.set_name || entry.set_code} (${entry.items})`);
              option.value = entry.set_code;
              return option;
            }),
        );
      }
      const query = new URLSearchParams({ signal, limit: "100" });
      if (select.value) query.set("set", select.value);
      const page = await api(`/v1/signals?${query}`);
      show("");
      freshness(page);
      const tested = page.backtest;
      $("backtest").textContent = tested
        ? `Out of sample, a ${signal} was followed by a move its way within ` +
          `${tested.horizon_days} days ${percent(tested.hit_rate)} of ${tested.count} times ` +
          `(mean forward return ${percent(tested.mean_forward_return)}).`
        : "";
      $("screener-rows").replaceChildren(
        ...page.items.map((entry, index) => {
          const row = element("tr");
          row.dataset.cardId = entry.card_id;
          const name = element("td");
          name.append(cardLink(entry));
          row.append(
            element("td", String(index + 1)),
            name,
            element("td", entry.set_code || ""),
            element("td", money(entry.market_price)),
            element("td", `${money(entry.fair_low)} – ${money(entry.fair_high)}`),
            element("td", percent(entry.edge_pct)),
          );
          return row;
        }),
      );
      $("screener-status").textContent =
        page.total === 0 ? `No ${signal} today.` : `${page.total} ${signal} signals today.`;
    } catch (error) {
      explain(error);
    }
  }

  // --- routing and wiring ---------------------------------------------------------

  function route() {
    if (!apiKey()) {
      askForKey();
      return;
    }
    $("key-form").hidden = true;
    $("forget-key").hidden = false;
    const hash = location.hash.replace(/^#\/?/, "");
    if (hash.startsWith("card/")) {
      openCard(decodeURIComponent(hash.slice("card/".length)));
    } else if (hash === "screener") {
      openScreener();
    } else {
      showView("search-view");
      $("search-input").focus();
    }
  }

  function start() {
    $("key-form").addEventListener("submit", (event) => {
      event.preventDefault();
      sessionStorage.setItem(KEY_STORAGE, $("key-input").value.trim());
      $("key-input").value = "";
      show("");
      route();
    });
    $("forget-key").addEventListener("click", () => {
      sessionStorage.removeItem(KEY_STORAGE);
      route();
    });
    $("search-input").addEventListener("input", scheduleSearch);
    for (const button of document.querySelectorAll("[data-range]")) {
      button.addEventListener("click", () => {
        range = button.dataset.range;
        if (history) drawChart();
      });
    }
    for (const button of document.querySelectorAll("[data-signal]")) {
      button.addEventListener("click", () => {
        signal = button.dataset.signal;
        openScreener();
      });
    }
    $("set-select").addEventListener("change", openScreener);
    window.addEventListener("hashchange", route);
    window.addEventListener("resize", () => {
      if (chart && !$("card-view").hidden) chart.setSize({ width: $("chart").clientWidth, height: 320 });
    });
    route();
  }

  document.addEventListener("DOMContentLoaded", start);
})();
