// A browser-shaped sandbox for the unit tests: runs the built dist/crow.min.js in a node:vm
// context with a recording fetch, sendBeacon, localStorage, history, timers and event
// listeners. The browser tests (browser.test.mjs) run the same file in real Chromium.
import { readFileSync } from "node:fs";
import vm from "node:vm";

export const CODE = readFileSync(new URL("../dist/crow.min.js", import.meta.url), "utf8");

/** Lets pending promise callbacks (a send's fetch and its continuations) run. */
export const settle = async () => {
  for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
};

/**
 * A page: `new Page({ storage, href, nav })`. Pass the same `storage` to two pages for two tabs
 * (or a reload). `respond(body)` decides each fetch's answer: a status, or an Error to reject.
 */
export class Page {
  constructor({ storage = {}, href = "https://shop.example/", nav = {}, script = null, brokenStorage = false } = {}) {
    this.storage = storage;
    this.fetches = []; // { url, init, body }
    this.beacons = []; // { url, body }
    this.timers = []; // { id, ms, fn, done }
    this.listeners = {};
    this.respond = () => 200;
    this.touched = { document: new Set(), navigator: new Set() };
    const page = this;
    const location = { href };
    const doc = {
      referrer: "https://www.google.com/",
      title: "Home",
      currentScript: script,
      get cookie() {
        throw new Error("crow.js read document.cookie");
      },
      set cookie(v) {
        throw new Error("crow.js wrote document.cookie");
      },
    };
    const navigator = {
      language: "fr-FR",
      onLine: true,
      sendBeacon(url, body) {
        page.beacons.push({ url, body: JSON.parse(body) });
        return true;
      },
      ...nav,
    };
    // Records every property the SDK reads, to prove it reads no fingerprinting surface.
    const spy = (obj, seen) =>
      new Proxy(obj, {
        get(t, k) {
          if (typeof k === "string") seen.add(k);
          return Reflect.get(t, k, t);
        },
      });
    const setUrl = (url) => url != null && (location.href = new URL(url, location.href).href);
    const history = {
      pushState(s, t, url) {
        setUrl(url);
      },
      replaceState(s, t, url) {
        setUrl(url);
      },
    };
    const sandbox = {
      document: spy(doc, this.touched.document),
      navigator: spy(navigator, this.touched.navigator),
      location,
      history,
      URL,
      AbortSignal,
      setTimeout: (fn, ms) => {
        const t = { id: this.timers.length + 1, ms, fn, done: false };
        this.timers.push(t);
        return t.id;
      },
      clearTimeout: (id) => {
        const t = this.timers.find((t) => t.id === id);
        if (t) t.done = true;
      },
      addEventListener: (type, fn) => (this.listeners[type] ||= []).push(fn),
      fetch: async (url, init) => {
        const body = JSON.parse(init.body);
        this.fetches.push({ url, init, body });
        const answer = await this.respond(body);
        if (answer instanceof Error) throw answer;
        return { status: answer, ok: answer >= 200 && answer < 300 };
      },
    };
    if (brokenStorage) {
      Object.defineProperty(sandbox, "localStorage", {
        get() {
          throw new Error("SecurityError: storage is disabled");
        },
      });
    } else {
      sandbox.localStorage = storage;
    }
    sandbox.window = sandbox;
    this.window = vm.createContext(sandbox);
    this.location = location;
    this.doc = doc;
    vm.runInContext(CODE, this.window);
    this.crow = this.window.crow;
  }

  /** The stored state (what localStorage.crow holds), or undefined. */
  get state() {
    return this.storage.crow === undefined ? undefined : JSON.parse(this.storage.crow);
  }

  /** Timers scheduled and neither fired nor cleared. */
  get pending() {
    return this.timers.filter((t) => !t.done);
  }

  /** Fires the oldest pending timer; returns its delay. */
  async tick() {
    const t = this.pending[0];
    if (!t) throw new Error("no timer pending");
    t.done = true;
    await t.fn();
    await settle();
    return t.ms;
  }

  async fire(type) {
    for (const f of this.listeners[type] || []) await f({ type });
    await settle();
  }

  /** Every event sent by fetch, in order. */
  get sent() {
    return this.fetches.flatMap((f) => f.body.b);
  }
}
