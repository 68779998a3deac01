#!/usr/bin/env node
// In-process A/B of the byte-level entry readers of two built trees (e.g. this checkout and a copy
// of another commit, each after `pnpm build`): egress's transcoder (runEncodeJob, no gzip),
// admitEntries and countEntries on one 1,000 x ~200 B chunk. Short rounds of each tree alternate
// in one process, so a busy machine slows both alike; the figure is events per CPU-second.
//
//   node scripts/bench-ab-readers.js <treeA> <treeB> [rounds=30]
const { resolve } = require('node:path');

const trees = process.argv.slice(2, 4).map((t) => resolve(t));
const rounds = Number(process.argv[4] || 30);
if (trees.length !== 2) {
  console.error('usage: node scripts/bench-ab-readers.js <treeA> <treeB> [rounds]');
  process.exit(2);
}

function cases(tree) {
  const fp = require(`${tree}/packages/forward-protocol/dist/index.js`);
  const { runEncodeJob, DEFAULT_FIELDS } = require(`${tree}/packages/sinks/dist/index.js`);
  const { sampleRecord } = require(`${tree}/packages/cli/dist/bench/protocol.js`);
  const t = new fp.EventTime(1700000000, 1);
  const entries = Buffer.concat(Array.from({ length: 1000 }, (_, i) => fp.encodeEntry(t, sampleRecord(i))));
  const record = { tag: 'app.web', idPrefix: 'k', partition: 0, start: 0, end: entries.length };
  const job = { entries, records: [record], fields: DEFAULT_FIELDS, gzipLevels: [], ndjson: false };
  return {
    transcode: { perRound: 150, run: () => runEncodeJob(job).events },
    admitEntries: { perRound: 400, run: () => fp.admitEntries(entries) },
    countEntries: { perRound: 400, run: () => fp.countEntries(entries) },
  };
}

const loaded = trees.map(cases);
for (const name of Object.keys(loaded[0])) {
  const totals = trees.map(() => ({ events: 0, cpu: 0 }));
  for (const c of loaded) for (let i = 0; i < 300; i++) c[name].run(); // warm-up
  for (let k = 0; k < rounds; k++) {
    loaded.forEach((c, j) => {
      const { perRound, run } = c[name];
      const before = process.cpuUsage();
      let events = 0;
      for (let i = 0; i < perRound; i++) events += run();
      const used = process.cpuUsage(before);
      totals[j].events += events;
      totals[j].cpu += (used.user + used.system) / 1e6;
    });
  }
  const rate = totals.map((t) => t.events / t.cpu);
  console.log(
    `${name.padEnd(13)} A ${Math.round(rate[0]).toLocaleString('en')}  B ${Math.round(rate[1]).toLocaleString('en')} events per CPU-second  B/A ${(rate[1] / rate[0]).toFixed(3)}`,
  );
}
