#!/usr/bin/python3
"""PyMySQL and mysqlclient (MySQLdb) checks for scripts/drivers.sh.

Usage: checks.py pymysql|mysqldb, with DRV_HOST, DRV_PORT, DRV_TLS (1 =
TLS with DRV_CA), DRV_WORK (a scratch directory) in the environment.
Prints one stable line per check, "name: result", so that a run directly
against a node and one through tandem can be compared line by line. Lines
starting with "#" are informational and not compared.
"""
import hashlib
import os
import sys
import threading
import time

DRV = sys.argv[1] if len(sys.argv) > 1 else ""
if DRV == "pymysql":
    import pymysql as db
    from pymysql.constants import CLIENT
elif DRV == "mysqldb":
    import MySQLdb as db
    from MySQLdb.constants import CLIENT
else:
    sys.exit("usage: checks.py pymysql|mysqldb")

HOST = os.environ["DRV_HOST"]
PORT = int(os.environ["DRV_PORT"])
TLS = os.environ.get("DRV_TLS") == "1"
CA = os.environ.get("DRV_CA", "")
WORK = os.environ["DRV_WORK"]
CLIENT_SSL = 0x800


def connect(user="drv_user", pw="drvpass", database="drvtest", **kw):
    args = dict(host=HOST, port=PORT, user=user, connect_timeout=10, read_timeout=60,
                write_timeout=60, charset="utf8mb4", **kw)
    if DRV == "pymysql":
        args["password"] = pw
        if database:
            args["database"] = database
    else:
        args["passwd"] = pw
        if database:
            args["db"] = database
    if TLS:
        args["ssl"] = {"ca": CA}
    return db.connect(**args)


def err(e):
    if isinstance(e, db.MySQLError) and len(e.args) >= 2:
        return "ERR %s %s" % (e.args[0], e.args[1])
    return "EXC %s %s" % (type(e).__name__, e)


def check(name, fn):
    try:
        r = fn()
    except Exception as e:  # every failure is a result to compare
        r = err(e)
    print("%s: %s" % (name, r), flush=True)


def q(conn, sql, args=None):
    cur = conn.cursor()
    cur.execute(sql, args)
    rows = cur.fetchall()
    cur.close()
    return [tuple(r) for r in rows]


def one(conn, sql, args=None):
    return q(conn, sql, args)[0][0]


def thread_id(conn):
    return conn.thread_id()


def wait_state(watcher, tid, state):
    """Polls the process list until thread tid is in state (bounded)."""
    deadline = time.time() + 30
    while time.time() < deadline:
        if q(watcher, "SELECT 1 FROM information_schema.PROCESSLIST WHERE ID = %s AND STATE = %s",
             (tid, state)):
            return True
        time.sleep(0.05)
    return False


# --- connecting and accounts --------------------------------------------

def c_connect():
    c = connect()
    r = q(c, "SELECT CURRENT_USER(), DATABASE(), @@character_set_client")
    c.close()
    return r


def c_tls_used():
    c = connect()
    if DRV == "pymysql":
        used = type(c._sock).__name__ == "SSLSocket"
    else:
        used = "unknown"  # mysqlclient 1.4 does not tell; tandem's require_tls proves it
    c.close()
    return used


def c_thread_id():
    c = connect()
    a, b = thread_id(c), one(c, "SELECT CONNECTION_ID()")
    c.close()
    return "equal" if a == b else "differ (driver %s, CONNECTION_ID() %s)" % (a, b)


def c_server():
    c = connect()
    caps = c.server_capabilities if DRV == "pymysql" else c.server_capabilities
    ver = c.get_server_info()
    c.close()
    return "version=%s capabilities=%#x" % (ver, caps & ~CLIENT_SSL & 0xffffffff)


def login(user, pw, database="drvtest"):
    def f():
        c = connect(user, pw, database)
        r = one(c, "SELECT CURRENT_USER()")
        c.close()
        return r
    return f


# --- KILL ---------------------------------------------------------------

def c_kill_query():
    c1, c2 = connect(), connect()
    tid = one(c1, "SELECT CONNECTION_ID()")
    out = {}

    def run():
        try:
            out["r"] = q(c1, "SELECT SLEEP(60)")
        except Exception as e:
            out["r"] = err(e)
    t = threading.Thread(target=run)
    t.start()
    if not wait_state(c2, tid, "User sleep"):
        return "sleeping thread never seen"
    k = q(c2, "KILL QUERY %d" % tid)
    t.join(60)
    after = q(c1, "SELECT 'alive'")
    c1.close()
    c2.close()
    return "kill=%s sleeper=%s after=%s" % (k, out.get("r"), after)


def c_kill_connection():
    c1, c2 = connect(), connect()
    tid = one(c1, "SELECT CONNECTION_ID()")
    k = q(c2, "KILL %d" % tid)
    try:
        after = q(c1, "SELECT 1")
    except Exception as e:
        after = err(e)
    c2.close()
    return "kill=%s victim=%s" % (k, after)


def c_com_process_kill():
    # mysqlclient's kill() sends COM_PROCESS_KILL.
    c1, c2 = connect(), connect()
    tid = one(c1, "SELECT CONNECTION_ID()")
    c2.kill(tid)
    gone = False
    deadline = time.time() + 30
    while time.time() < deadline:
        if not q(c2, "SELECT 1 FROM information_schema.PROCESSLIST WHERE ID = %s", (tid,)):
            gone = True
            break
        time.sleep(0.05)
    c2.close()
    return "victim gone=%s" % gone


def c_kill_other_user():
    c1, c2 = connect(), connect("drv_other", "otherpass")
    tid = one(c1, "SELECT CONNECTION_ID()")
    try:
        r = q(c2, "KILL %d" % tid)
    except Exception as e:
        r = err(e)
    alive = q(c1, "SELECT 'alive'")
    c1.close()
    c2.close()
    return ("kill=%s victim=%s" % (r, alive)).replace(str(tid), "<victim>")


def c_kill_unknown():
    c = connect()
    try:
        return q(c, "KILL QUERY 999999999")
    finally:
        c.close()


# --- COM_CHANGE_USER, COM_INIT_DB, COM_PING ------------------------------

def c_change_user():
    c = connect()
    before = one(c, "SELECT CONNECTION_ID()")
    q(c, "SET @x = 1")
    c.change_user("drv_other", "otherpass", "drvtest")
    r = q(c, "SELECT CURRENT_USER(), DATABASE(), @x")
    same = one(c, "SELECT CONNECTION_ID()") == before
    c.close()
    return "%s same_thread=%s" % (r, same)


def c_change_user_wrong():
    c = connect()
    before = one(c, "SELECT CONNECTION_ID()")
    q(c, "SET @x = 1")
    try:
        c.change_user("drv_other", "wrong", "drvtest")
        r = "changed"
    except Exception as e:
        r = err(e)
    try:
        after = q(c, "SELECT CURRENT_USER(), DATABASE(), @x, CONNECTION_ID() = %s", (before,))
    except Exception as e:
        after = err(e)
    return "change=%s after=%s" % (r, after)


def c_select_db():
    c = connect()
    c.select_db("drvtest")
    r = [one(c, "SELECT DATABASE()")]
    try:
        c.select_db("mysql")
        r.append("selected")
    except Exception as e:
        r.append(err(e))
    c.close()
    return r


def c_ping():
    c = connect()
    c.ping()
    c.close()
    return "ok"


# --- statements ---------------------------------------------------------

def c_params():
    c = connect()
    r = q(c, "SELECT %s, %s, %s, %s, %s", (42, "x'y", None, 1.5, b"\x00\x01"))
    c.close()
    return r


def c_sql_prepare():
    c = connect()
    q(c, "PREPARE s FROM 'SELECT ? + 1'")
    q(c, "SET @a = 41")
    r = q(c, "EXECUTE s USING @a")
    q(c, "DEALLOCATE PREPARE s")
    c.close()
    return r


def c_multi_statements():
    c = connect(client_flag=CLIENT.MULTI_STATEMENTS)
    cur = c.cursor()
    cur.execute("SELECT 1; SELECT 'two', 2; DO 3")
    sets = []
    while True:
        sets.append([tuple(r) for r in (cur.fetchall() or [])])
        if not cur.nextset():
            break
    c.close()
    return sets


def c_procedure():
    c = connect(client_flag=CLIENT.MULTI_RESULTS)
    cur = c.cursor()
    cur.callproc("drv_proc", (5, 0))
    sets = []
    while True:
        sets.append([tuple(r) for r in (cur.fetchall() or [])])
        if not cur.nextset():
            break
    cur.close()
    out = q(c, "SELECT @_drv_proc_1")
    c.close()
    return "sets=%s out=%s" % (sets, out)


def c_transaction():
    c, w = connect(), connect(autocommit=True)
    q(c, "DROP TABLE IF EXISTS drv_py_tx")
    q(c, "CREATE TABLE drv_py_tx (id INT PRIMARY KEY)")
    c.begin()
    q(c, "INSERT INTO drv_py_tx VALUES (1)")
    c.rollback()
    n1 = one(w, "SELECT COUNT(*) FROM drv_py_tx")
    c.begin()
    q(c, "INSERT INTO drv_py_tx VALUES (2)")
    mid = one(w, "SELECT COUNT(*) FROM drv_py_tx")
    c.commit()
    n2 = one(w, "SELECT COUNT(*) FROM drv_py_tx")
    c.close()
    w.close()
    return "after_rollback=%s uncommitted_seen=%s after_commit=%s" % (n1, mid, n2)


def c_batch():
    c = connect(autocommit=True)
    q(c, "DROP TABLE IF EXISTS drv_py_batch")
    q(c, "CREATE TABLE drv_py_batch (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(20))")
    cur = c.cursor()
    cur.executemany("INSERT INTO drv_py_batch (v) VALUES (%s)", [("v%d" % i,) for i in range(100)])
    rc = cur.rowcount
    r = q(c, "SELECT COUNT(*), MIN(id), MAX(id) FROM drv_py_batch")
    c.close()
    return "rowcount=%s %s" % (rc, r)


def c_affected_rows():
    c = connect(autocommit=True)
    c2 = connect(autocommit=True, client_flag=CLIENT.FOUND_ROWS)
    q(c, "DROP TABLE IF EXISTS drv_py_aff")
    q(c, "CREATE TABLE drv_py_aff (id INT PRIMARY KEY, v INT)")
    q(c, "INSERT INTO drv_py_aff VALUES (1, 1)")
    cur = c.cursor()
    cur.execute("UPDATE drv_py_aff SET v = 1 WHERE id = 1")
    plain = cur.rowcount
    cur2 = c2.cursor()
    cur2.execute("UPDATE drv_py_aff SET v = 1 WHERE id = 1")
    found = cur2.rowcount
    c.close()
    c2.close()
    return "changed=%s found_rows=%s" % (plain, found)


def c_last_insert_id():
    c = connect(autocommit=True)
    q(c, "DROP TABLE IF EXISTS drv_py_ai")
    q(c, "CREATE TABLE drv_py_ai (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")
    cur = c.cursor()
    cur.execute("INSERT INTO drv_py_ai (v) VALUES (1), (2)")
    first = cur.lastrowid
    cur.execute("INSERT INTO drv_py_ai (v) VALUES (3)")
    second = cur.lastrowid
    r = one(c, "SELECT LAST_INSERT_ID()")
    c.close()
    return "lastrowid=%s,%s LAST_INSERT_ID()=%s" % (first, second, r)


def c_compression():
    c = connect(compress=True)
    st = q(c, "SHOW SESSION STATUS LIKE 'Compression'")
    r = q(c, "SELECT LENGTH(REPEAT('abc', 400000)), MD5(REPEAT('abc', 400000))")
    c.close()
    return "%s %s" % (st, r)


def c_load_data_local():
    path = os.path.join(WORK, "infile-%s.csv" % DRV)
    with open(path, "w") as f:
        for i in range(1, 1001):
            f.write("%d,row %d\n" % (i, i))
    c = connect(local_infile=True, autocommit=True)
    q(c, "DROP TABLE IF EXISTS drv_py_load")
    q(c, "CREATE TABLE drv_py_load (id INT PRIMARY KEY, v VARCHAR(20))")
    cur = c.cursor()
    cur.execute("LOAD DATA LOCAL INFILE %s INTO TABLE drv_py_load FIELDS TERMINATED BY ','", (path,))
    rc = cur.rowcount
    r = q(c, "SELECT COUNT(*), SUM(id), MAX(v) FROM drv_py_load")
    c.close()
    return "rowcount=%s %s" % (rc, r)


def c_large_result():
    c = connect()
    cur = c.cursor()
    cur.execute("SELECT seq, REPEAT('x', seq % 100) FROM seq_1_to_200000")
    n = s = ln = 0
    for row in cur:
        n += 1
        s += row[0]
        ln += len(row[1])
    c.close()
    return "rows=%d sum=%d bytes=%d" % (n, s, ln)


def c_big_value():
    c = connect()
    v = one(c, "SELECT REPEAT('y', 20 * 1024 * 1024)")
    if isinstance(v, bytes):
        v = v.decode()
    c.close()
    return "len=%d md5=%s" % (len(v), hashlib.md5(v.encode()).hexdigest())


def c_big_insert():
    kw = {"max_allowed_packet": 64 << 20} if DRV == "pymysql" else {}
    c = connect(autocommit=True, **kw)
    q(c, "DROP TABLE IF EXISTS drv_py_big")
    q(c, "CREATE TABLE drv_py_big (b LONGBLOB)")
    blob = bytes(range(256)) * (17 * 4096)  # 17 MiB: more than one packet
    q(c, "INSERT INTO drv_py_big VALUES (%s)", (blob,))
    r = q(c, "SELECT LENGTH(b), MD5(b) FROM drv_py_big")
    c.close()
    return r


def stmt(sql):
    def f():
        c = connect(autocommit=True)
        try:
            return q(c, sql)
        finally:
            c.close()
    return f


def c_warnings():
    c = connect()
    cur = c.cursor()
    cur.execute("SELECT 1/0, CAST('12abc' AS INT)")
    rows = cur.fetchall()
    wc = c.warning_count()
    w = q(c, "SHOW WARNINGS")
    c.close()
    return "rows=%s warning_count=%s warnings=%s" % ([tuple(r) for r in rows], wc, w)


def c_dup_key():
    c = connect(autocommit=True)
    q(c, "DROP TABLE IF EXISTS drv_py_dup")
    q(c, "CREATE TABLE drv_py_dup (id INT PRIMARY KEY)")
    q(c, "INSERT INTO drv_py_dup VALUES (1)")
    try:
        q(c, "INSERT INTO drv_py_dup VALUES (1)")
        return "inserted"
    finally:
        c.close()


def main():
    print("# driver %s %s" % (DRV, getattr(db, "__version__", getattr(db, "version_info", ""))), flush=True)
    check("# tls_used", c_tls_used)
    check("connect", c_connect)
    check("thread_id", c_thread_id)
    check("server", c_server)
    check("wrong_password", login("drv_user", "wrong"))
    check("locked_account", login("drv_locked", "lockedpass"))
    check("host_pattern_specific", login("drv_host", "hostpass1"))
    check("host_pattern_shadowed", login("drv_host", "hostpass2"))
    check("host_pattern_nomatch", login("drv_far", "farpass"))
    check("unknown_user", login("drv_nobody", "x"))
    check("no_password", login("drv_nopw", ""))
    check("expired_password", login("drv_expired", "expiredpass"))
    check("unknown_db", login("drv_user", "drvpass", "drv_nodb"))
    check("db_denied", login("drv_other", "otherpass", "mysql"))
    check("kill_query", c_kill_query)
    check("kill_connection", c_kill_connection)
    check("kill_other_user", c_kill_other_user)
    check("kill_unknown", c_kill_unknown)
    if DRV == "mysqldb":
        check("com_process_kill", c_com_process_kill)
        check("change_user", c_change_user)
        check("change_user_wrong", c_change_user_wrong)
    check("select_db", c_select_db)
    check("ping", c_ping)
    check("params", c_params)
    check("sql_prepare", c_sql_prepare)
    check("multi_statements", c_multi_statements)
    check("procedure", c_procedure)
    check("transaction", c_transaction)
    check("batch", c_batch)
    check("affected_rows", c_affected_rows)
    check("last_insert_id", c_last_insert_id)
    check("compression", c_compression)
    check("load_data_local", c_load_data_local)
    check("large_result", c_large_result)
    check("big_value", c_big_value)
    check("big_insert", c_big_insert)
    check("error_syntax", stmt("SELEC 1"))
    check("error_no_table", stmt("SELECT * FROM drv_no_such_table"))
    check("error_too_long", stmt("INSERT INTO drv_t (k) VALUES (REPEAT('k', 100))"))
    check("error_dup_key", c_dup_key)
    check("warnings", c_warnings)
    check("charset", stmt("SELECT '\U0001F600', CHAR_LENGTH('\U0001F600'), HEX('\u00e9')"))


if __name__ == "__main__":
    main()
