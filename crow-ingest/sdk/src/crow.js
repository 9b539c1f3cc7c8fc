// crow.js: CROW's website SDK. Every byte counts (the budget is 1,024 bytes minified and
// gzipped, checked by `make test`), so the code is terse; README.md beside it documents it.
//
// Wire format: CROW's compact layout for POST /api/v1/events (crow-ingest/src/website/mod.rs),
// sent as text/plain, so no CORS preflight is needed and sendBeacon carries the same body.
// State is one JSON object in localStorage["crow"], never in cookies: q = the queue of unsent
// events, d = how many events the queue's bound dropped that no send has reported yet,
// a = anonymous id, u = user id, c = consent (1 opted in, 0 opted out). It is read before every
// change, since other tabs share it. Nothing is written before sending is allowed.
((w, d, n, h) => {
  let cfg, // init()'s options
    mem = { q: [] }, // the state; alone when localStorage is unavailable (private modes, sandboxes)
    timer,
    tries = 0, // consecutive failed sends, for the backoff
    busy, // a send is in flight
    last; // the URL (without #fragment) of the last page view
  // sync() loads the state, sync(1) saves it.
  const sync = (write) => {
      try {
        write ? (localStorage.crow = JSON.stringify(mem)) : (mem = JSON.parse(localStorage.crow));
      } catch (e) {}
      return mem;
    },
    rand = () => Date.now().toString(36) + Math.random().toString(36),
    here = () => location.href.split("#")[0],
    // Sending is allowed after an explicit opt-in and never after an opt-out; otherwise only if
    // the site does not ask for consent first and the browser signals neither Do-Not-Track nor
    // Global Privacy Control. (Loads the state as a side effect.)
    allowed = (c = sync().c) => cfg && (c ?? (!cfg.consent && n.doNotTrack != 1 && !n.globalPrivacyControl)),
    // Only the language goes with a batch: screen size and time zone would help fingerprinting.
    body = (b, dr) => JSON.stringify({ k: cfg.key, sa: Date.now(), b, dr, c: { l: n.language } }),
    send = async (r, b, dr) => {
      timer = 0;
      if (busy || !allowed() || !(b = mem.q.slice(0, cfg.batch))[0]) return;
      dr = mem.d;
      busy = 1;
      try {
        r = await fetch(cfg.host + "/api/v1/events", {
          method: "POST",
          body: body(b, dr),
          // No keepalive: its 64 KiB cap would fail a large batch forever. A send cut off by
          // the page's exit is not lost: its events stay queued and pagehide beacons them.
          signal: AbortSignal.timeout(1e4),
        });
        // A 4xx other than 408 and 429 will never succeed: the batch is dropped, not retried.
        if (/^(5|408|429)/.test(r.status)) throw 0;
        // Remove the sent events by id from the stored queue, which other tabs may have changed.
        sync().q = mem.q.filter((e) => !b.some((x) => x.i == e.i));
        mem.d -= dr;
        sync(1);
        tries = 0;
      } catch (e) {
        tries++;
      }
      busy = 0;
      // Jittered exponential backoff after a failure: wait * 2^tries * [0.5, 1.5), at most 5 min.
      sync().q[0] && schedule(tries && Math.min(cfg.wait * 2 ** tries, 3e5) * (0.5 + Math.random()));
    },
    schedule = (ms) => timer || (timer = setTimeout(send, ms)),
    // The page is hidden or going away: hand the queue to sendBeacon, which outlives the page.
    // sendBeacon cannot tell whether the server got it, so the events stay queued until a send
    // confirms them; the server stores an event id once, so the resend is harmless. A backlog
    // over sendBeacon's 64 KiB is refused by the browser and waits for the next visit.
    beacon = () => allowed() && mem.q[0] && n.sendBeacon(cfg.host + "/api/v1/events", body(mem.q)),
    push = (t, e, q) => {
      if (!allowed()) return;
      q = mem.q;
      mem.a = mem.a || rand();
      q.push((e = { t, i: rand(), a: mem.a, u: mem.u, ts: Date.now(), c: { u: location.href, r: d.referrer, ti: d.title }, ...e }));
      mem.u = e.u;
      // The bound drops the oldest events and counts them; the next send reports the count.
      mem.d = ~~mem.d + q.splice(0, q.length - cfg.max).length;
      sync(1);
      // While backing off, new events wait for the scheduled retry.
      q.length < cfg.batch || tries ? schedule(cfg.wait) : send();
    },
    page = () => allowed() && ((last = here()), push("p")),
    // A history change is a page view when the URL without its #fragment changed.
    nav = () => allowed() && cfg.auto != 0 && last != here() && page(),
    crow = (w.crow = {
      init(o) {
        cfg = { batch: 20, wait: 1e3, max: 500, ...o };
        nav();
        send();
      },
      track: (n, p) => push("t", { n, p }),
      page,
identify: (u, p) => push("i", { u, p }),
      // Forgets the user id and the anonymous id (logout).
      reset() {
        sync().u = mem.a = null;
        sync(1);
      },
      optIn() {
        sync().c = 1;
        sync(1);
        nav();
      },
      // Forgets everything: the queue, the ids, the counts.
      optOut() {
        mem = { q: [], c: 0 };
        sync(1);
      },
      flush: send,
    });
  for (let m of ["pushState", "replaceState"]) {
    let f = h[m];
    h[m] = (...a) => (f.apply(h, a), nav());
  }
  addEventListener("popstate", nav);
  addEventListener("online", send);
  addEventListener("pagehide", beacon);
  addEventListener("visibilitychange", beacon);
  // <script src=".../sdk/crow.js" data-key="wk_..."> initializes itself.
  let s = d.currentScript,
    k = s?.dataset.key;
  k && crow.init({ key: k, host: new URL(s.src).origin });
})(window, document, navigator, history);
