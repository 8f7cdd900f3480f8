// Drives counters_server.js's in-memory KeyWindow on a simulated clock, for
// tests/test_counter_server.py: prints, as JSON, the most keys it held while KEYS distinct
// keys arrived at PER_MS a millisecond under a WINDOW_MS window, and where one key's
// memory ends.
//
//   deno run tests/key_window_check.js WINDOW_MS KEYS PER_MS

import { KeyWindow } from "../counters_server.js";

const [windowMs, total, perMs] = Deno.args.map(Number);
const keys = new KeyWindow(windowMs);
let largest = 0;
for (let i = 0; i < total; i++) {
  keys.add(`key-${i}`, Math.floor(i / perMs));
  if (i % perMs === 0) largest = Math.max(largest, keys.size);
}
const probe = new KeyWindow(windowMs);
probe.add("probe", 1_000);
console.log(JSON.stringify({
  largest,
  last: keys.size,
  seenJustInside: probe.has("probe", 1_000 + windowMs - 1),
  seenAtWindow: probe.has("probe", 1_000 + windowMs),
}));
