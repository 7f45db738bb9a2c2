// idalloc from Node.js with node-postgres (pg).
//
// The README's "Using it from your application" shows this file's
// snippets; t/024_node_pg.pl runs it against a throwaway cluster:
//
//     node clients/node/orders.js 'postgresql://...' WORKERS ROUNDS
//
// WORKERS concurrent workers share one pg.Pool (fewer connections than
// workers); each inserts ROUNDS orders one by one with RETURNING, and bulk
// inserts whose IDs come from one idalloc_batch call (hi/lo).  Prints one
// JSON object: { one: [[worker, id], ...], batches: [[worker, start, end], ...] }.
'use strict';

const { Pool } = require('pg');

// hi/lo: one idalloc_batch call reserves the IDs of a whole bulk insert
async function reserveIds(client, allocator, n) {
  const { rows } = await client.query(
    'SELECT start_id, end_id FROM idalloc_batch($1, $2)', [allocator, n]);
  // bigint comes back as a string: keep it one (IDs pass 2^53)
  return { start: BigInt(rows[0].start_id), end: BigInt(rows[0].end_id) };
}

async function bulkInsert(pool, items) {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const { start, end } = await reserveIds(client, 'orders', items.length);
    const ids = items.map((_, i) => (start + BigInt(i)).toString());
    await client.query(
      'INSERT INTO orders (id, item) SELECT * FROM unnest($1::bigint[], $2::text[])',
      [ids, items]);
    await client.query('COMMIT');
    return [start.toString(), end.toString()];
  } catch (e) {
    await client.query('ROLLBACK');
    throw e;
  } finally {
    client.release();
  }
}

async function worker(pool, w, rounds, out) {
  for (let r = 0; r < rounds; r++) {
    // the ID comes from the column default: INSERT ... RETURNING id
    const { rows } = await pool.query(
      'INSERT INTO orders (item) VALUES ($1) RETURNING id', [`order ${w}.${r}`]);
    out.one.push([w, rows[0].id]);
    if (r % 10 === 9) {
      const items = Array.from({ length: 100 }, (_, i) => `bulk ${w}.${r}.${i}`);
      const [start, end] = await bulkInsert(pool, items);
      out.batches.push([w, start, end]);
    }
  }
}

async function main() {
  const [url, workers = '8', rounds = '50'] = process.argv.slice(2);
  const pool = new Pool({ connectionString: url, max: 4 });
  // a migration: may run again (if_not_exists)
  await pool.query("SELECT idalloc_create('orders', if_not_exists => true)");
  await pool.query(`CREATE TABLE IF NOT EXISTS orders (
      id bigint PRIMARY KEY DEFAULT idalloc_one('orders'),
      item text NOT NULL)`);
  const out = { one: [], batches: [] };
  await Promise.all(Array.from({ length: Number(workers) },
    (_, w) => worker(pool, w, Number(rounds), out)));
  await pool.end();
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
