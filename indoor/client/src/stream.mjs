// One listing (rooms or base floor) read through EventSource, the way production clients read it
// (API.md): `features` events of at most SSE_BATCH_SIZE features, each with the cursor after it as
// its event id, then `end`, after which the server closes the connection.
//
// - After `end` the stream is closed here, so the browser does not re-request it.
// - A dropped connection is resumed by the browser itself (it sends Last-Event-ID). If the
//   browser gives up (the retry got a non-200, e.g. 503 from a proxy while the app restarts), the
//   stream is reopened here from the last event id (`?lastEventId=`), after a pause that grows.
// - Every feature is handed on once: ids already seen are dropped (a resume may repeat a batch
//   that was half received when the connection dropped).

const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 10000;
const END_CLOSE_GRACE_MS = 1000;

export class FeatureStream {
  /**
   * @param {string} url a listing URL (`/api/rooms/?level=1`)
   * @param {object} handlers onFeatures(features) for new features only; onEnd(total);
   *   onTrouble() when the connection is lost; onRecovered() when it is back
   */
  constructor(url, handlers) {
    this.url = url;
    this.handlers = handlers;
    this.seen = new Set();
    this.lastEventId = null;
    this.ended = false;
    this.closed = false;
    this.troubled = false;
    this.retryMs = RETRY_MIN_MS;
    this.source = null;
    this.timer = null;
  }

  start() {
    this.open(this.url);
    return this;
  }

  /** Stop for good (the user moved on). */
  close() {
    this.closed = true;
    clearTimeout(this.timer);
    if (this.source) this.source.close();
  }

  get count() {
    return this.seen.size;
  }

  open(url) {
    const source = new EventSource(url);
    this.source = source;
    source.addEventListener("open", () => this.recovered());
    source.addEventListener("features", (event) => this.onFeatures(event));
    source.addEventListener("end", () => {
      this.ended = true;
      this.recovered();
      this.handlers.onEnd?.(this.seen.size);
      // Closed when the server closes the connection (the error event below), before the browser
      // would re-request it; closing it here, while the response is still open, would abort it.
      this.timer = setTimeout(() => source.close(), END_CLOSE_GRACE_MS);
    });
    source.addEventListener("error", () => this.onError(source));
  }

  onFeatures(event) {
    if (event.lastEventId) this.lastEventId = event.lastEventId;
    this.recovered();
    const batch = JSON.parse(event.data);
    const fresh = [];
    for (const feature of batch.features) {
      if (feature.id == null || this.seen.has(feature.id)) continue;
      this.seen.add(feature.id);
      fresh.push(feature);
    }
    if (fresh.length) this.handlers.onFeatures(fresh);
  }

  onError(source) {
    if (this.ended || this.closed) {
      clearTimeout(this.timer);
      source.close();
      return;
    }
    if (source !== this.source) return;
    this.trouble();
    // CONNECTING: the browser retries by itself, with Last-Event-ID. CLOSED: it gave up.
    if (source.readyState === EventSource.CLOSED) this.scheduleReopen();
  }

  scheduleReopen() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.reopen(), this.retryMs);
    this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
  }

  async reopen() {
    if (this.closed) return;
    const url = this.resumeUrl();
    // EventSource cannot tell "204: nothing left" from "503: try again": ask first.
    const probe = new AbortController();
    let status = 0;
    try {
      const response = await fetch(url, { headers: { Accept: "text/event-stream" }, signal: probe.signal });
      status = response.status;
    } catch {
      status = 0;
    } finally {
      probe.abort();
    }
    if (this.closed) return;
    if (status === 204) {
      this.ended = true;
      this.recovered();
      this.handlers.onEnd?.(this.seen.size);
    } else if (status === 200) {
      this.open(url);
    } else {
      this.scheduleReopen();
    }
  }

  resumeUrl() {
    if (!this.lastEventId) return this.url;
    const joiner = this.url.includes("?") ? "&" : "?";
    return `${this.url}${joiner}lastEventId=${encodeURIComponent(this.lastEventId)}`;
  }

  trouble() {
    if (!this.troubled) {
      this.troubled = true;
      this.handlers.onTrouble?.();
    }
  }

  recovered() {
    this.retryMs = RETRY_MIN_MS;
    if (this.troubled) {
      this.troubled = false;
      this.handlers.onRecovered?.();
    }
  }
}
