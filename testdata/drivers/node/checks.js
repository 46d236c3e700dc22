// Node mysql2 checks for scripts/drivers.sh.
//
// Environment: DRV_HOST, DRV_PORT, DRV_TLS (1 = TLS with DRV_CA), DRV_WORK.
// Prints one stable line per check, "name: result"; lines starting with
// "#" are informational and not compared.
'use strict';
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const mysql = require('mysql2/promise');

const HOST = process.env.DRV_HOST;
const PORT = Number(process.env.DRV_PORT);
const TLS = process.env.DRV_TLS === '1';
const CA = process.env.DRV_CA || '';
const WORK = process.env.DRV_WORK;
const CLIENT_SSL = 0x800;

function connect(user = 'drv_user', password = 'drvpass', database = 'drvtest', extra = {}) {
  const opts = { host: HOST, port: PORT, user, password, connectTimeout: 10000, charset: 'utf8mb4', ...extra };
  if (database) opts.database = database;
  if (TLS) opts.ssl = { ca: fs.readFileSync(CA) };
  return mysql.createConnection(opts);
}

function err(e) {
  if (e && e.errno !== undefined && e.sqlState !== undefined) return `ERR ${e.errno} ${e.sqlState} ${e.message}`;
  if (e && e.code) return `EXC ${e.code} ${e.message}`;
  return `EXC ${e}`;
}

async function check(name, fn) {
  let r;
  try {
    r = await fn();
  } catch (e) {
    r = err(e);
  }
  if (typeof r !== 'string') r = JSON.stringify(r);
  process.stdout.write(`${name}: ${r}\n`);
}

const Q = (c, sql, args) => c.query({ sql, values: args, timeout: 60000, rowsAsArray: true }).then(([rows]) => rows);
const one = async (c, sql, args) => (await Q(c, sql, args))[0][0];

async function waitState(watcher, tid, state) {
  const deadline = Date.now() + 30000;
  while (Date.now() < deadline) {
    const r = await Q(watcher, 'SELECT 1 FROM information_schema.PROCESSLIST WHERE ID = ? AND STATE = ?', [tid, state]);
    if (r.length) return true;
    await new Promise((res) => setTimeout(res, 50));
  }
  return false;
}

const login = (user, pw, db = 'drvtest') => async () => {
  const c = await connect(user, pw, db);
  try {
    return await one(c, 'SELECT CURRENT_USER()');
  } finally {
    await c.end();
  }
};

const stmt = (sql) => async () => {
  const c = await connect();
  try {
    return await Q(c, sql);
  } finally {
    await c.end();
  }
};

async function main() {
  process.stdout.write(`# driver mysql2 ${require('mysql2/package.json').version}\n`);
  await check('# tls_used', async () => {
    const c = await connect();
    const used = !!c.connection.stream.encrypted;
    await c.end();
    return used;
  });
  await check('connect', stmt('SELECT CURRENT_USER(), DATABASE(), @@character_set_client'));
  await check('thread_id', async () => {
    const c = await connect();
    const a = c.threadId;
    const b = await one(c, 'SELECT CONNECTION_ID()');
    await c.end();
    return a === b ? 'equal' : `differ (driver ${a}, CONNECTION_ID() ${b})`;
  });
  await check('server', async () => {
    const c = await connect();
    const hs = c.connection._handshakePacket;
    const caps = (hs.capabilityFlags & ~CLIENT_SSL) >>> 0;
    await c.end();
    return `version=${hs.serverVersion} capabilities=0x${caps.toString(16)}`;
  });
  await check('wrong_password', login('drv_user', 'wrong'));
  await check('locked_account', login('drv_locked', 'lockedpass'));
  await check('host_pattern_specific', login('drv_host', 'hostpass1'));
  await check('host_pattern_shadowed', login('drv_host', 'hostpass2'));
  await check('host_pattern_nomatch', login('drv_far', 'farpass'));
  await check('unknown_user', login('drv_nobody', 'x'));
  await check('no_password', login('drv_nopw', ''));
  await check('expired_password', login('drv_expired', 'expiredpass'));
  await check('unknown_db', login('drv_user', 'drvpass', 'drv_nodb'));
  await check('db_denied', login('drv_other', 'otherpass', 'mysql'));

  await check('kill_query', async () => {
    const c1 = await connect();
    const c2 = await connect();
    const tid = c1.threadId;
    const sleeper = Q(c1, 'SELECT SLEEP(60)').then((r) => JSON.stringify(r), err);
    if (!(await waitState(c2, tid, 'User sleep'))) return 'sleeping thread never seen';
    const k = await Q(c2, `KILL QUERY ${tid}`);
    const s = await sleeper;
    const after = await Q(c1, "SELECT 'alive'");
    await c1.end();
    await c2.end();
    return `kill=${JSON.stringify(k)} sleeper=${s} after=${JSON.stringify(after)}`;
  });
  await check('kill_connection', async () => {
    // Deterministic: the victim's next command comes after its thread is
    // gone and its socket closed, so it always meets a closed connection.
    const c1 = await connect();
    const c2 = await connect();
    const events = [];
    c1.on('error', (e) => events.push(e.code || String(e)));
    const closed = new Promise((res) => c1.connection.stream.once('close', () => res(true)));
    const tid = c1.threadId;
    const k = await Q(c2, `KILL ${tid}`);
    let gone = false;
    for (const deadline = Date.now() + 30000; Date.now() < deadline; ) {
      if (!(await Q(c2, 'SELECT 1 FROM information_schema.PROCESSLIST WHERE ID = ?', [tid])).length) {
        gone = true;
        break;
      }
      await new Promise((res) => setTimeout(res, 50));
    }
    const sawClose = await Promise.race([closed, new Promise((res) => setTimeout(() => res(false), 10000))]);
    let after;
    try {
      after = JSON.stringify(await Q(c1, 'SELECT 1'));
    } catch (e) {
      after = err(e);
    }
    await c2.end();
    c1.destroy();
    return `kill=${JSON.stringify(k)} thread_gone=${gone} socket_closed=${sawClose} events=${JSON.stringify(events)} victim=${after}`;
  });
  await check('kill_other_user', async () => {
    const c1 = await connect();
    const c2 = await connect('drv_other', 'otherpass');
    const tid = c1.threadId;
    let r;
    try {
      r = JSON.stringify(await Q(c2, `KILL ${tid}`));
    } catch (e) {
      r = err(e);
    }
    const alive = await Q(c1, "SELECT 'alive'");
    await c1.end();
    await c2.end();
    return `kill=${r} victim=${JSON.stringify(alive)}`.split(String(tid)).join('<victim>');
  });
  await check('kill_unknown', stmt('KILL QUERY 999999999'));

  await check('change_user', async () => {
    const c = await connect();
    const before = c.threadId;
    await Q(c, 'SET @x = 1');
    await c.changeUser({ user: 'drv_other', password: 'otherpass', database: 'drvtest' });
    const r = await Q(c, 'SELECT CURRENT_USER(), DATABASE(), @x, CONNECTION_ID() = ?', [before]);
    await c.end();
    return r;
  });
  await check('change_user_wrong', async () => {
    const c = await connect();
    c.on('error', () => {});
    const before = c.threadId;
    await Q(c, 'SET @x = 1');
    let r;
    try {
      await c.changeUser({ user: 'drv_other', password: 'wrong', database: 'drvtest' });
      r = 'changed';
    } catch (e) {
      r = err(e);
    }
    let after;
    try {
      after = JSON.stringify(await Q(c, 'SELECT CURRENT_USER(), DATABASE(), @x, CONNECTION_ID() = ?', [before]));
    } catch (e) {
      after = err(e);
    }
    c.destroy();
    return `change=${r} after=${after}`;
  });
  await check('ping', async () => {
    const c = await connect();
    await c.ping();
    await c.end();
    return 'ok';
  });

  await check('prepared', async () => {
    const c = await connect();
    const out = [];
    const [r1] = await c.execute({ sql: 'SELECT ? + 1, ?, ?, CAST(? AS DECIMAL(10,2)), ?', rowsAsArray: true },
      [41, "x'y", null, '1.50', Buffer.from([0, 1])]);
    out.push(r1);
    await Q(c, 'DROP TABLE IF EXISTS drv_js_ps');
    await Q(c, 'CREATE TABLE drv_js_ps (id INT PRIMARY KEY, d DATETIME(3), f DOUBLE, s TEXT)');
    for (let i = 1; i <= 3; i++) {
      await c.execute('INSERT INTO drv_js_ps VALUES (?, ?, ?, ?)', [i, new Date(Date.UTC(2024, 0, i, 1, 2, 3, 4)), i / 3, 's'.repeat(i)]);
    }
    const [r2] = await c.execute({ sql: 'SELECT id, DATE_FORMAT(d, "%Y-%m-%d %H:%i:%s.%f"), ROUND(f, 6), s FROM drv_js_ps WHERE id >= ? ORDER BY id', rowsAsArray: true }, [2]);
    out.push(r2);
    await c.end();
    return out;
  });
  await check('prepared_error', async () => {
    const c = await connect();
    try {
      await c.execute('SELECT * FROM drv_no_such_table WHERE id = ?', [1]);
      return 'prepared';
    } finally {
      await c.end();
    }
  });
  await check('multi_statements', async () => {
    const c = await connect(undefined, undefined, undefined, { multipleStatements: true });
    const [r] = await c.query({ sql: "SELECT 1; SELECT 'two', 2; DO 3", rowsAsArray: true });
    await c.end();
    return r.map((x) => (Array.isArray(x) ? x : { affectedRows: x.affectedRows }));
  });
  await check('procedure', async () => {
    const c = await connect();
    const [r] = await c.query({ sql: 'CALL drv_proc(5, @y)', rowsAsArray: true });
    const out = await Q(c, 'SELECT @y');
    await c.end();
    return { sets: r.map((x) => (Array.isArray(x) ? x : 'ok')), out };
  });
  await check('procedure_prepared', async () => {
    const c = await connect();
    const [r] = await c.execute({ sql: 'CALL drv_proc(?, @y)', rowsAsArray: true }, [7]);
    const out = await Q(c, 'SELECT @y');
    await c.end();
    return { sets: r.map((x) => (Array.isArray(x) ? x : 'ok')), out };
  });
  await check('transaction', async () => {
    const c = await connect();
    const w = await connect();
    await Q(c, 'DROP TABLE IF EXISTS drv_js_tx');
    await Q(c, 'CREATE TABLE drv_js_tx (id INT PRIMARY KEY)');
    await c.beginTransaction();
    await Q(c, 'INSERT INTO drv_js_tx VALUES (1)');
    await c.rollback();
    const n1 = await one(w, 'SELECT COUNT(*) FROM drv_js_tx');
    await c.beginTransaction();
    await c.execute('INSERT INTO drv_js_tx VALUES (?)', [2]);
    const mid = await one(w, 'SELECT COUNT(*) FROM drv_js_tx');
    await c.commit();
    const n2 = await one(w, 'SELECT COUNT(*) FROM drv_js_tx');
    await c.end();
    await w.end();
    return `after_rollback=${n1} uncommitted_seen=${mid} after_commit=${n2}`;
  });
  await check('batch', async () => {
    const c = await connect();
    await Q(c, 'DROP TABLE IF EXISTS drv_js_batch');
    await Q(c, 'CREATE TABLE drv_js_batch (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(20))');
    const rows = [];
    for (let i = 0; i < 100; i++) rows.push([`v${i}`]);
    const [res] = await c.query('INSERT INTO drv_js_batch (v) VALUES ?', [rows]);
    const r = await Q(c, 'SELECT COUNT(*), MIN(id), MAX(id) FROM drv_js_batch');
    await c.end();
    return `affected=${res.affectedRows} insertId=${res.insertId} ${JSON.stringify(r)}`;
  });
  await check('affected_rows', async () => {
    const c = await connect(); // mysql2 sets CLIENT_FOUND_ROWS by default
    const c2 = await connect(undefined, undefined, undefined, { flags: ['-FOUND_ROWS'] });
    await Q(c, 'DROP TABLE IF EXISTS drv_js_aff');
    await Q(c, 'CREATE TABLE drv_js_aff (id INT PRIMARY KEY, v INT)');
    await Q(c, 'INSERT INTO drv_js_aff VALUES (1, 1)');
    const [a] = await c.query('UPDATE drv_js_aff SET v = 1 WHERE id = 1');
    const [b] = await c2.query('UPDATE drv_js_aff SET v = 1 WHERE id = 1');
    await c.end();
    await c2.end();
    return `found_rows=${a.affectedRows}/${a.changedRows} changed=${b.affectedRows}/${b.changedRows} info=${b.info}`;
  });
  await check('last_insert_id', async () => {
    const c = await connect();
    await Q(c, 'DROP TABLE IF EXISTS drv_js_ai');
    await Q(c, 'CREATE TABLE drv_js_ai (id INT AUTO_INCREMENT PRIMARY KEY, v INT)');
    const [a] = await c.query('INSERT INTO drv_js_ai (v) VALUES (1), (2)');
    const [b] = await c.execute('INSERT INTO drv_js_ai (v) VALUES (?)', [3]);
    const r = await one(c, 'SELECT LAST_INSERT_ID()');
    await c.end();
    return `insertId=${a.insertId},${b.insertId} LAST_INSERT_ID()=${r}`;
  });
  await check('compression', async () => {
    const c = await connect(undefined, undefined, undefined, { compress: true });
    const st = await Q(c, "SHOW SESSION STATUS LIKE 'Compression'");
    const r = await Q(c, "SELECT LENGTH(REPEAT('abc', 400000)), MD5(REPEAT('abc', 400000))");
    await c.end();
    return `${JSON.stringify(st)} ${JSON.stringify(r)}`;
  });
  await check('load_data_local', async () => {
    const file = path.join(WORK, 'infile-mysql2.csv');
    let data = '';
    for (let i = 1; i <= 1000; i++) data += `${i},row ${i}\n`;
    fs.writeFileSync(file, data);
    const c = await connect();
    await Q(c, 'DROP TABLE IF EXISTS drv_js_load');
    await Q(c, 'CREATE TABLE drv_js_load (id INT PRIMARY KEY, v VARCHAR(20))');
    const [res] = await c.query({
      sql: `LOAD DATA LOCAL INFILE '${file}' INTO TABLE drv_js_load FIELDS TERMINATED BY ','`,
      infileStreamFactory: () => fs.createReadStream(file),
    });
    const r = await Q(c, 'SELECT COUNT(*), SUM(id), MAX(v) FROM drv_js_load');
    await c.end();
    return `affected=${res.affectedRows} ${JSON.stringify(r)}`;
  });
  await check('large_result', async () => {
    const c = await connect();
    const rows = await Q(c, "SELECT seq, REPEAT('x', seq % 100) FROM seq_1_to_200000");
    let s = 0;
    let len = 0;
    for (const r of rows) {
      s += Number(r[0]);
      len += r[1].length;
    }
    await c.end();
    return `rows=${rows.length} sum=${s} bytes=${len}`;
  });
  await check('large_result_prepared', async () => {
    const c = await connect();
    const [rows] = await c.execute({ sql: "SELECT seq, REPEAT('x', seq % 100) FROM seq_1_to_200000 WHERE seq > ?", rowsAsArray: true }, [0]);
    let s = 0;
    let len = 0;
    for (const r of rows) {
      s += Number(r[0]);
      len += r[1].length;
    }
    await c.end();
    return `rows=${rows.length} sum=${s} bytes=${len}`;
  });
  await check('big_value', async () => {
    const c = await connect();
    const v = await one(c, "SELECT REPEAT('y', 20 * 1024 * 1024)");
    await c.end();
    return `len=${v.length} md5=${crypto.createHash('md5').update(v).digest('hex')}`;
  });
  await check('big_insert', async () => {
    const c = await connect();
    await Q(c, 'DROP TABLE IF EXISTS drv_js_big');
    await Q(c, 'CREATE TABLE drv_js_big (b LONGBLOB)');
    const blob = Buffer.alloc(17 * 1024 * 1024);
    for (let i = 0; i < blob.length; i++) blob[i] = i & 255;
    await c.execute('INSERT INTO drv_js_big VALUES (?)', [blob]);
    const r = await Q(c, 'SELECT LENGTH(b), MD5(b) FROM drv_js_big');
    await c.end();
    return r;
  });
  await check('error_syntax', stmt('SELEC 1'));
  await check('error_no_table', stmt('SELECT * FROM drv_no_such_table'));
  await check('error_too_long', stmt("INSERT INTO drv_t (k) VALUES (REPEAT('k', 100))"));
  await check('warnings', async () => {
    const c = await connect();
    const [rows] = await c.query({ sql: "SELECT 1/0, CAST('12abc' AS INT)", rowsAsArray: true });
    const w = await Q(c, 'SHOW WARNINGS');
    const [rows2] = await c.execute({ sql: "SELECT 1/0, CAST('12abc' AS INT) FROM DUAL WHERE ? = 1", rowsAsArray: true }, [1]);
    const w2 = await Q(c, 'SHOW WARNINGS');
    await c.end();
    return { rows, w, rows2, w2 };
  });
  await check('charset', stmt("SELECT '\u{1F600}', CHAR_LENGTH('\u{1F600}'), HEX('\u00e9')"));
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stdout.write(`fatal: ${err(e)}\n`);
    process.exit(1);
  },
);
