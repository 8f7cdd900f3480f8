// Counter server: counts defect events per user and action.
//
//   deno run --allow-net counters_server.js [port] [--dedupe-days N]       (in memory)
//   deno run --allow-net --allow-read=DATA --allow-write=DATA \
//       counters_server.js [port] --data DATA [--dedupe-days N]             (SQLite file DATA)
//   COUNTER_SIGNING_SECRETS=whsec_...[,whsec_...] \
//       deno run --allow-net --allow-env=COUNTER_SIGNING_SECRETS counters_server.js ...
//
// port defaults to 8888. The options combine.
//
// POST /  with {"user": <int>, "action": "create"|"delete"} -> 200 {"status": "counted"},
//         counted once per Idempotency-Key header: a key seen within the dedupe window is
//         answered 200 {"status": "duplicate"} and not recounted. A bad body -> 400, a
//         body over 16 KiB -> 413, a failed store -> 503, a missing or bad signature (when
//         signing is on) -> 401, each with a JSON {"error": ...}.
// GET  /  -> the counts, {"<user id>": {"create": n, "delete": m}}.
//
// --data DATA: counts and keys live in the SQLite file DATA (Deno's built-in node:sqlite, WAL,
//   synchronous=FULL). The events arriving within GROUP_WINDOW_MS are committed in one
//   transaction (group commit: one fsync for the group); each is answered only after that
//   commit, so a 200 survives a crash (and, synchronous=FULL, a power cut) and a key is
//   counted once across restarts. SQLite opens its side files (DATA-wal, DATA-shm) itself,
//   outside Deno's permission checks, so the two flags naming DATA are all it needs; its
//   directory must exist and be writable. Tables:
//     counts(user INTEGER, action TEXT, n INTEGER)          one row per user and action
//     seen_keys(key TEXT PRIMARY KEY, user INTEGER, action TEXT, seen_at INTEGER)
//       the audit trail: one row per counted key (events without a key have none), with the
//       event's user and action and its arrival time in Unix milliseconds; a duplicate
//       changes nothing. Rows older than the dedupe window are deleted (a key counted
//       again after its window replaces its row).
//   Without --data both live in memory and a restart forgets them.
//
// --dedupe-days N (default 7, fractions allowed): a key is remembered for N days after its
//   arrival, then forgotten (in memory: time buckets dropped whole; in the file: batched
//   DELETEs at start and then periodically), so memory and the file stay bounded. An event
//   retried more than N days after its first arrival is counted again. Counts are kept forever.
//
// COUNTER_SIGNING_SECRETS (Standard Webhooks): comma-separated whsec_<base64> secrets. When
//   set and not blank, and readable (--allow-env; the permission is queried, never prompted
//   for), a POST must carry webhook-id, webhook-timestamp (Unix seconds, within 5 minutes of
//   this clock) and webhook-signature, a space-separated list holding one
//   "v1,<base64 HMAC-SHA256>" of "<webhook-id>.<webhook-timestamp>.<body>" under one of the
//   secrets; else 401, not counted. A malformed secret stops the server at start.
//   The signed webhook-id is then the idempotency key: an Idempotency-Key header, if present,
//   must equal it (400 otherwise), so a replayed request cannot dodge deduplication.
//
// Logs one line per event: arrival time (ISO 8601, UTC), user, action, key, as
//   2026-12-01T10:00:00.000Z user 3 create (key <key or ->)
//   2026-12-01T10:00:00.000Z duplicate <key>: user 3 create (not counted)
// written in chunks, at least every LOG_FLUSH_MS and at exit (SIGINT, SIGTERM), rather than
// a console.log call, and so a write system call, per event.
//
// Offline by design: no remote imports, only Deno's built-ins.

import { DatabaseSync } from "node:sqlite";
import { parseArgs } from "node:util";

const DAY_MS = 86_400_000;
const GROUP_WINDOW_MS = 2;
const LOG_FLUSH_MS = 100;
const LOG_CHUNK_CHARS = 64 * 1024;
const PRUNE_BATCH_ROWS = 5_000;
const KEY_BUCKETS = 8;
const SIGNATURE_TOLERANCE_SECONDS = 5 * 60;
const SECRETS_VARIABLE = "COUNTER_SIGNING_SECRETS";
const SHUTDOWN_GRACE_MS = 2_000;
const ACTIONS = new Set(["create", "delete"]);

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** Idempotency keys remembered for `windowMs`, in time buckets dropped whole when expired. */
export class KeyWindow {
  constructor(windowMs, buckets = KEY_BUCKETS) {
    this.windowMs = windowMs;
    this.bucketMs = windowMs / buckets;
    this.buckets = new Map(); // bucket number -> Map(key -> arrival ms)
  }

  /** Whether `key` arrived less than the window before `now`. */
  has(key, now) {
    for (const keys of this.buckets.values()) {
      const seen = keys.get(key);
      if (seen !== undefined && now - seen < this.windowMs) return true;
    }
    return false;
  }

  /** Remember `key` as arrived at `now`. */
  add(key, now) {
    this.expire(now);
    const number = Math.floor(now / this.bucketMs);
    let keys = this.buckets.get(number);
    if (keys === undefined) this.buckets.set(number, keys = new Map());
    keys.set(key, now);
  }

  /** Drop the buckets whose every key is older than the window. */
  expire(now) {
    for (const number of this.buckets.keys()) {
      if ((number + 1) * this.bucketMs <= now - this.windowMs) this.buckets.delete(number);
    }
  }

  /** How many keys are held (expired ones included until their bucket goes). */
  get size() {
    let size = 0;
    for (const keys of this.buckets.values()) size += keys.size;
    return size;
  }
}

function addCount(counts, user, action, n = 1) {
  const userCounts = (counts[user] ??= { create: 0, delete: 0 });
  userCounts[action] += n;
}

/** Counts and keys in memory: an event is settled at once. */
export class MemoryLedger {
  constructor(windowMs) {
    this.keys = new KeyWindow(windowMs);
    this.counts = {};
  }

  /** "counted" or "duplicate" for an event {user, action, key, at}. */
  record({ user, action, key, at }) {
    if (key !== null) {
      if (this.keys.has(key, at)) return Promise.resolve("duplicate");
      this.keys.add(key, at);
    }
    addCount(this.counts, user, action);
    return Promise.resolve("counted");
  }

  prune(now = Date.now()) {
    this.keys.expire(now);
    return Promise.resolve();
  }

  close() {}
}

const SCHEMA = `
  PRAGMA journal_mode = WAL;
  PRAGMA synchronous = FULL;
  PRAGMA busy_timeout = 5000;
  CREATE TABLE IF NOT EXISTS counts (
    user INTEGER NOT NULL, action TEXT NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY (user, action)) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS seen_keys (
    key TEXT PRIMARY KEY, user INTEGER NOT NULL, action TEXT NOT NULL, seen_at INTEGER NOT NULL);
  CREATE INDEX IF NOT EXISTS seen_keys_seen_at ON seen_keys (seen_at);
`;

/** Counts and keys in a SQLite file, committed by groups of events. */
export class SqliteLedger {
  constructor(path, windowMs) {
    this.windowMs = windowMs;
    this.db = new DatabaseSync(path);
    this.db.exec(SCHEMA);
    this.seenAt = this.db.prepare("SELECT seen_at FROM seen_keys WHERE key = ?");
    this.remember = this.db.prepare(
      "INSERT OR REPLACE INTO seen_keys (key, user, action, seen_at) VALUES (?, ?, ?, ?)",
    );
    this.increment = this.db.prepare(
      "INSERT INTO counts (user, action, n) VALUES (?, ?, ?)" +
        " ON CONFLICT (user, action) DO UPDATE SET n = n + excluded.n",
    );
    this.forget = this.db.prepare(
      "DELETE FROM seen_keys WHERE key IN" +
        " (SELECT key FROM seen_keys WHERE seen_at <= ? LIMIT " + PRUNE_BATCH_ROWS + ")",
    );
    this.counts = {};
    for (const { user, action, n } of this.db.prepare("SELECT * FROM counts").iterate()) {
      addCount(this.counts, user, action, n);
    }
    this.group = [];
  }

  /** "counted" or "duplicate" for an event {user, action, key, at}, once committed. */
  record(event) {
    return new Promise((resolve, reject) => {
      if (this.group.length === 0) setTimeout(() => this.commit(), GROUP_WINDOW_MS);
      this.group.push({ event, resolve, reject });
    });
  }

  /** Commit the waiting group in one transaction, then answer each of its events. */
  commit() {
    const group = this.group;
    this.group = [];
    if (group.length === 0) return;
    let outcomes;
    const increments = {};
    try {
      this.db.exec("BEGIN IMMEDIATE");
      outcomes = group.map(({ event }) => this.settle(event, increments));
      for (const [user, actions] of Object.entries(increments)) {
        for (const [action, n] of Object.entries(actions)) {
          if (n > 0) this.increment.run(Number(user), action, n);
        }
      }
      this.db.exec("COMMIT");
    } catch (error) {
      if (this.db.isTransaction) this.db.exec("ROLLBACK");
      for (const { reject } of group) reject(error);
      return;
    }
    for (const [user, actions] of Object.entries(increments)) {
      for (const [action, n] of Object.entries(actions)) addCount(this.counts, user, action, n);
    }
    group.forEach(({ resolve }, i) => resolve(outcomes[i]));
  }

  settle({ user, action, key, at }, increments) {
    if (key !== null) {
      const row = this.seenAt.get(key);
      if (row !== undefined && at - row.seen_at < this.windowMs) return "duplicate";
      this.remember.run(key, user, action, at);
    }
    addCount(increments, user, action);
    return "counted";
  }

  /** Delete the keys older than the window, a batch per statement, yielding between. */
  async prune(now = Date.now()) {
    while (this.forget.run(now - this.windowMs).changes === PRUNE_BATCH_ROWS) {
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
  }

  close() {
    this.commit();
    this.db.close();
  }
}

/** Log lines buffered and written in chunks: at least every LOG_FLUSH_MS and on demand. */
class LineLog {
  constructor(output = Deno.stdout) {
    this.output = output;
    this.lines = [];
    this.chars = 0;
    setInterval(() => this.flush(), LOG_FLUSH_MS);
  }

  write(line) {
    this.lines.push(line);
    this.chars += line.length + 1;
    if (this.chars >= LOG_CHUNK_CHARS) this.flush();
  }

  flush() {
    if (this.lines.length === 0) return;
    const data = encoder.encode(this.lines.join("\n") + "\n");
    this.lines = [];
    this.chars = 0;
    for (let written = 0; written < data.length;) {
      written += this.output.writeSync(data.subarray(written));
    }
  }
}

/**
 * Verifies Standard Webhooks signatures (v1, HMAC-SHA256) against a list of secrets.
 * Written here on Web Crypto because the server takes no imports (the spec's own
 * `standardwebhooks` package would be a remote one); the tests sign with the reference
 * Python package, so the two are checked against each other.
 */
export class SignatureVerifier {
  constructor(keys) {
    this.keys = keys;
  }

  /** A verifier for comma-separated whsec_ secrets; throws naming the bad one. */
  static async fromSecrets(value) {
    const secrets = value.split(",").map((s) => s.trim());
    const keys = await Promise.all(secrets.map(async (secret, i) => {
      let bytes;
      try {
        bytes = secret.startsWith("whsec_") && Uint8Array.fromBase64(secret.slice(6));
      } catch {
        bytes = null;
      }
      if (!bytes || bytes.length === 0) {
        throw new Error(`${SECRETS_VARIABLE}: secret ${i + 1} is not whsec_<base64>`);
      }
      return await crypto.subtle.importKey(
        "raw",
        bytes,
        { name: "HMAC", hash: "SHA-256" },
        false,
        ["verify"],
      );
    }));
    return new SignatureVerifier(keys);
  }

  /** null when `headers` sign `body` validly at `nowSeconds`, else the reason. */
  async check(headers, body, nowSeconds) {
    const id = headers.get("webhook-id");
    const timestamp = headers.get("webhook-timestamp");
    const signatures = headers.get("webhook-signature");
    if (!id || !timestamp || !signatures) {
      return "webhook-id, webhook-timestamp and webhook-signature headers are required";
    }
    if (!/^\d+$/.test(timestamp)) return "webhook-timestamp must be integer Unix seconds";
    if (Math.abs(nowSeconds - Number(timestamp)) > SIGNATURE_TOLERANCE_SECONDS) {
      return "webhook-timestamp is more than 5 minutes from the server's clock";
    }
    const prefix = encoder.encode(`${id}.${timestamp}.`);
    const signed = new Uint8Array(prefix.length + body.length);
    signed.set(prefix);
    signed.set(body, prefix.length);
    for (const entry of signatures.split(" ")) {
      const [version, value] = entry.split(",", 2);
      if (version !== "v1" || !value) continue;
      let signature;
      try {
        signature = Uint8Array.fromBase64(value);
      } catch {
        continue;
      }
      for (const key of this.keys) {
        // crypto.subtle.verify compares in constant time.
        if (await crypto.subtle.verify("HMAC", key, signature, signed)) return null;
      }
    }
    return "no valid v1 signature for a known secret";
  }
}

/** The verifier from the environment, or null when signing is off or the variable unreadable. */
async function verifierFromEnvironment() {
  const permission = Deno.permissions.querySync({ name: "env", variable: SECRETS_VARIABLE });
  if (permission.state !== "granted") return null;
  const value = Deno.env.get(SECRETS_VARIABLE) ?? "";
  return value.trim() ? await SignatureVerifier.fromSecrets(value) : null;
}

/** An event is a few dozen bytes: a body over this is refused with 413, and not read on. */
export const MAX_BODY_BYTES = 16 * 1024;

/**
 * The request's body, or null when it is over `limit` bytes. A declared
 * Content-Length decides before reading (what every client of ours sends);
 * a chunked body is read until it passes the limit, then the stream is cancelled.
 */
async function readBody(request, limit) {
  const declared = request.headers.get("content-length");
  if (declared !== null) {
    return Number(declared) > limit ? null : new Uint8Array(await request.arrayBuffer());
  }
  const chunks = [];
  let size = 0;
  for await (const chunk of request.body ?? []) {
    size += chunk.byteLength;
    if (size > limit) return null; // leaving the loop cancels the stream
    chunks.push(chunk);
  }
  const body = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return body;
}

function json(body, status = 200) {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json" },
  });
}

function validate(event) {
  if (event === null || typeof event !== "object" || Array.isArray(event)) {
    return "body must be a JSON object";
  }
  const keys = Object.keys(event).sort().join(",");
  if (keys !== "action,user") return 'body must have exactly the keys "user" and "action"';
  if (!Number.isSafeInteger(event.user)) return '"user" must be an integer';
  if (!ACTIONS.has(event.action)) return '"action" must be "create" or "delete"';
  return null;
}

/** The request handler: GET the counts, POST an event. */
function handler({ ledger, verifier, log }) {
  async function record(request, at) {
    let body;
    try {
      body = await readBody(request, MAX_BODY_BYTES);
    } catch {
      return json({ error: "could not read the body" }, 400);
    }
    if (body === null) {
      return json({ error: `body over ${MAX_BODY_BYTES} bytes` }, 413);
    }
    let key = request.headers.get("idempotency-key");
    if (verifier !== null) {
      const refusal = await verifier.check(request.headers, body, at / 1000);
      if (refusal) {
        log.write(`${new Date(at).toISOString()} refused ${key ?? "-"}: ${refusal}`);
        return json({ error: refusal }, 401);
      }
      const id = request.headers.get("webhook-id");
      if (key !== null && key !== id) {
        return json({ error: "Idempotency-Key must equal webhook-id" }, 400);
      }
      key = id;
    }
    let event;
    try {
      event = JSON.parse(decoder.decode(body));
    } catch {
      return json({ error: "body is not valid JSON" }, 400);
    }
    const error = validate(event);
    if (error) return json({ error }, 400);
    let status;
    try {
      status = await ledger.record({ user: event.user, action: event.action, key, at });
    } catch (failure) {
      return json({ error: `could not store the event: ${failure.message}` }, 503);
    }
    const time = new Date(at).toISOString();
    log.write(
      status === "counted"
        ? `${time} user ${event.user} ${event.action} (key ${key ?? "-"})`
        : `${time} duplicate ${key}: user ${event.user} ${event.action} (not counted)`,
    );
    return json({ status });
  }

  return (request) => {
    const at = Date.now();
    const { pathname } = new URL(request.url);
    if (pathname !== "/") return json({ error: "not found" }, 404);
    if (request.method === "GET") return json(ledger.counts);
    if (request.method === "POST") return record(request, at);
    return json({ error: "method not allowed" }, 405);
  };
}

const USAGE = "usage: counters_server.js [port] [--data FILE] [--dedupe-days N]";

/** {port, data, windowMs} from the command line; throws with the reason. */
export function parseOptions(args) {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { data: { type: "string" }, "dedupe-days": { type: "string", default: "7" } },
  });
  if (positionals.length > 1) throw new Error("at most one port");
  const port = Number(positionals[0] ?? 8888);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error("bad port");
  const days = Number(values["dedupe-days"]);
  if (!Number.isFinite(days) || days <= 0) throw new Error("--dedupe-days must be a number > 0");
  return { port, data: values.data ?? null, windowMs: days * DAY_MS };
}

function checkDataPermissions(path) {
  for (const name of ["read", "write"]) {
    if (Deno.permissions.querySync({ name, path }).state !== "granted") {
      throw new Error(
        `--data ${path} needs --allow-read=${path} --allow-write=${path} (no ${name} permission)`,
      );
    }
  }
}

async function main() {
  let options, ledger, verifier;
  try {
    options = parseOptions(Deno.args);
    if (options.data !== null) checkDataPermissions(options.data);
    verifier = await verifierFromEnvironment();
    ledger = options.data === null
      ? new MemoryLedger(options.windowMs)
      : new SqliteLedger(options.data, options.windowMs);
  } catch (error) {
    console.error(`counters_server.js: ${error.message}\n${USAGE}`);
    Deno.exit(2);
  }
  await ledger.prune();
  const pruning = Math.min(60_000, Math.max(1_000, options.windowMs / KEY_BUCKETS));
  setInterval(() => ledger.prune(), pruning);
  const log = new LineLog();
  const server = Deno.serve({
    port: options.port,
    hostname: "127.0.0.1",
    onListen: ({ port }) => {
      const store = options.data ?? "memory";
      const signing = verifier ? `${verifier.keys.length} signing secret(s)` : "unsigned";
      const days = options.windowMs / DAY_MS;
      log.write(
        `Listening on http://127.0.0.1:${port}/ (${store}, ${days} dedupe days, ${signing})`,
      );
      log.flush();
    },
  }, handler({ ledger, verifier, log }));

  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    // Let requests in flight finish (and their group commit), within a bound.
    await Promise.race([server.shutdown(), new Promise((r) => setTimeout(r, SHUTDOWN_GRACE_MS))]);
    ledger.close();
    log.flush();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", shutdown);
  Deno.addSignalListener("SIGTERM", shutdown);
}

if (import.meta.main) await main();
