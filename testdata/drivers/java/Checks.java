// MariaDB Connector/J checks for scripts/drivers.sh (written against the
// Debian libmariadb-java 2.7 API; plain JDBC except where noted).
//
// Environment: DRV_HOST, DRV_PORT, DRV_TLS (1 = TLS with DRV_CA), DRV_WORK.
// Prints one stable line per check, "name: result"; lines starting with
// "#" are informational and not compared.

import java.io.FileWriter;
import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.sql.CallableStatement;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.SQLWarning;
import java.sql.Statement;
import java.sql.Types;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

public class Checks {
    static final String HOST = System.getenv("DRV_HOST");
    static final String PORT = System.getenv("DRV_PORT");
    static final boolean TLS = "1".equals(System.getenv("DRV_TLS"));
    static final String CA = System.getenv("DRV_CA");
    static final String WORK = System.getenv("DRV_WORK");
    static final long CLIENT_SSL = 0x800;

    interface Check {
        Object run() throws Exception;
    }

    static Connection connect(String user, String pw, String db, String extra) throws SQLException {
        String url = "jdbc:mariadb://" + HOST + ":" + PORT + "/" + (db == null ? "" : db)
                + "?connectTimeout=10000&socketTimeout=60000";
        if (TLS) {
            url += "&useSsl=true&serverSslCert=" + CA;
        }
        if (!extra.isEmpty()) {
            url += "&" + extra;
        }
        return DriverManager.getConnection(url, user, pw);
    }

    static Connection connect() throws SQLException {
        return connect("drv_user", "drvpass", "drvtest", "");
    }

    static Connection connect(String extra) throws SQLException {
        return connect("drv_user", "drvpass", "drvtest", extra);
    }

    // Connector/J puts the thread id ("(conn=N)") and the port it dialled in its messages.
    static String norm(String s) {
        return s == null ? "null" : s.replaceAll("\\(conn=\\d+\\) ", "(conn=N) ").replaceAll("\\(port=\\d+\\)", "(port=P)");
    }

    static String err(Throwable e) {
        if (e instanceof SQLException) {
            SQLException s = (SQLException) e;
            return "ERR " + s.getErrorCode() + " " + s.getSQLState() + " " + norm(s.getMessage()).split("\n")[0];
        }
        return "EXC " + e.getClass().getSimpleName() + " " + norm(String.valueOf(e.getMessage())).split("\n")[0];
    }

    static void check(String name, Check c) {
        String r;
        try {
            Object o = c.run();
            r = String.valueOf(o);
        } catch (Throwable e) {
            r = err(e);
        }
        System.out.println(name + ": " + r);
        System.out.flush();
    }

    static List<List<Object>> rows(ResultSet rs) throws SQLException {
        List<List<Object>> out = new ArrayList<>();
        ResultSetMetaData md = rs.getMetaData();
        while (rs.next()) {
            List<Object> row = new ArrayList<>();
            for (int i = 1; i <= md.getColumnCount(); i++) {
                Object v = rs.getObject(i);
                if (v instanceof byte[]) {
                    v = "0x" + hex((byte[]) v);
                }
                row.add(v);
            }
            out.add(row);
        }
        rs.close();
        return out;
    }

    static String hex(byte[] b) {
        StringBuilder sb = new StringBuilder();
        for (byte x : b) {
            sb.append(String.format("%02x", x));
        }
        return sb.toString();
    }

    static List<List<Object>> q(Connection c, String sql) throws SQLException {
        try (Statement s = c.createStatement()) {
            return rows(s.executeQuery(sql));
        }
    }

    static Object one(Connection c, String sql) throws SQLException {
        return q(c, sql).get(0).get(0);
    }

    static void exec(Connection c, String sql) throws SQLException {
        try (Statement s = c.createStatement()) {
            s.execute(sql);
        }
    }

    static long status(Connection c, String name) throws SQLException {
        return Long.parseLong(String.valueOf(q(c, "SHOW SESSION STATUS LIKE '" + name + "'").get(0).get(1)));
    }

    static Object protocolField(Connection c, String field) throws Exception {
        Object conn = c.unwrap(Class.forName("org.mariadb.jdbc.MariaDbConnection"));
        Method gp = conn.getClass().getDeclaredMethod("getProtocol");
        gp.setAccessible(true);
        Object p = gp.invoke(conn);
        Class<?> k = p.getClass();
        while (k != null) {
            try {
                Field f = k.getDeclaredField(field);
                f.setAccessible(true);
                return f.get(p);
            } catch (NoSuchFieldException e) {
                k = k.getSuperclass();
            }
        }
        throw new NoSuchFieldException(field);
    }

    static long threadId(Connection c) throws Exception {
        Object conn = c.unwrap(Class.forName("org.mariadb.jdbc.MariaDbConnection"));
        return (Long) conn.getClass().getMethod("getServerThreadId").invoke(conn);
    }

    static boolean waitState(Connection w, long tid, String state) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (System.nanoTime() < deadline) {
            if (!q(w, "SELECT 1 FROM information_schema.PROCESSLIST WHERE ID = " + tid + " AND STATE = '" + state + "'").isEmpty()) {
                return true;
            }
            Thread.sleep(50);
        }
        return false;
    }

    static Check login(String user, String pw, String db) {
        return () -> {
            try (Connection c = connect(user, pw, db, "")) {
                return one(c, "SELECT CURRENT_USER()");
            }
        };
    }

    static Check stmt(String sql) {
        return () -> {
            try (Connection c = connect()) {
                return q(c, sql);
            }
        };
    }

    static String md5(byte[] b) throws Exception {
        return hex(MessageDigest.getInstance("MD5").digest(b));
    }

    // batch runs 100 inserts as one JDBC batch with the given URL options and
    // reports how the node executed them (session counters).
    static Check batch(String table, String opts) {
        return () -> {
            try (Connection c = connect(opts)) {
                exec(c, "DROP TABLE IF EXISTS " + table);
                exec(c, "CREATE TABLE " + table + " (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(20))");
                long ex = status(c, "Com_stmt_execute"), pr = status(c, "Com_stmt_prepare"), ins = status(c, "Com_insert");
                int[] counts;
                try (PreparedStatement ps = c.prepareStatement("INSERT INTO " + table + " (v) VALUES (?)")) {
                    for (int i = 0; i < 100; i++) {
                        ps.setString(1, "v" + i);
                        ps.addBatch();
                    }
                    counts = ps.executeBatch();
                }
                int sum = 0;
                for (int n : counts) {
                    sum += n;
                }
                return "counts=" + counts.length + "/" + sum + " Com_stmt_prepare+" + (status(c, "Com_stmt_prepare") - pr)
                        + " Com_stmt_execute+" + (status(c, "Com_stmt_execute") - ex) + " Com_insert+" + (status(c, "Com_insert") - ins)
                        + " " + q(c, "SELECT COUNT(*), MIN(id), MAX(id) FROM " + table);
            }
        };
    }

    public static void main(String[] args) throws Exception {
        System.out.println("# driver connectorj " + DriverManager.getDriver("jdbc:mariadb://x").getMajorVersion() + "."
                + DriverManager.getDriver("jdbc:mariadb://x").getMinorVersion());
        check("connect", stmt("SELECT CURRENT_USER(), DATABASE(), @@character_set_client"));
        check("thread_id", () -> {
            try (Connection c = connect()) {
                long a = threadId(c);
                long b = ((Number) one(c, "SELECT CONNECTION_ID()")).longValue();
                return a == b ? "equal" : "differ (driver " + a + ", CONNECTION_ID() " + b + ")";
            }
        });
        check("server", () -> {
            try (Connection c = connect()) {
                long caps = (Long) protocolField(c, "serverCapabilities");
                return "version=" + c.getMetaData().getDatabaseProductVersion() + " mariadb=" + protocolField(c, "serverMariaDb")
                        + " eofDeprecated=" + protocolField(c, "eofDeprecated") + " negotiated=0x" + Long.toHexString(caps & ~CLIENT_SSL);
            }
        });
        check("wrong_password", login("drv_user", "wrong", "drvtest"));
        check("locked_account", login("drv_locked", "lockedpass", "drvtest"));
        check("host_pattern_specific", login("drv_host", "hostpass1", "drvtest"));
        check("host_pattern_shadowed", login("drv_host", "hostpass2", "drvtest"));
        check("host_pattern_nomatch", login("drv_far", "farpass", "drvtest"));
        check("unknown_user", login("drv_nobody", "x", "drvtest"));
        check("no_password", login("drv_nopw", "", "drvtest"));
        check("expired_password", login("drv_expired", "expiredpass", "drvtest"));
        check("unknown_db", login("drv_user", "drvpass", "drv_nodb"));
        check("db_denied", login("drv_other", "otherpass", "mysql"));

        ExecutorService pool = Executors.newCachedThreadPool();
        check("cancel", () -> {
            // Statement.cancel() opens a new connection and sends KILL QUERY
            // with the thread id of the greeting.
            try (Connection c1 = connect(); Connection w = connect(); Statement s = c1.createStatement()) {
                long tid = threadId(c1);
                Future<String> f = pool.submit(() -> {
                    try {
                        return rows(s.executeQuery("SELECT SLEEP(60)")).toString();
                    } catch (SQLException e) {
                        return err(e);
                    }
                });
                if (!waitState(w, tid, "User sleep")) {
                    return "sleeping thread never seen";
                }
                s.cancel();
                return "sleeper=" + f.get(60, TimeUnit.SECONDS) + " after=" + q(c1, "SELECT 'alive'");
            }
        });
        check("kill_query", () -> {
            try (Connection c1 = connect(); Connection c2 = connect()) {
                long tid = ((Number) one(c1, "SELECT CONNECTION_ID()")).longValue();
                Future<String> f = pool.submit(() -> {
                    try {
                        return q(c1, "SELECT SLEEP(60)").toString();
                    } catch (SQLException e) {
                        return err(e);
                    }
                });
                if (!waitState(c2, tid, "User sleep")) {
                    return "sleeping thread never seen";
                }
                exec(c2, "KILL QUERY " + tid);
                return "sleeper=" + f.get(60, TimeUnit.SECONDS) + " after=" + q(c1, "SELECT 'alive'");
            }
        });
        check("kill_connection", () -> {
            try (Connection c1 = connect(); Connection c2 = connect()) {
                exec(c2, "KILL " + threadId(c1));
                String after;
                try {
                    after = q(c1, "SELECT 1").toString();
                } catch (SQLException e) {
                    after = err(e);
                }
                return "victim=" + after + " valid=" + c1.isValid(5);
            }
        });
        check("kill_other_user", () -> {
            try (Connection c1 = connect(); Connection c2 = connect("drv_other", "otherpass", "drvtest", "")) {
                long tid = threadId(c1);
                String r;
                try {
                    exec(c2, "KILL " + tid);
                    r = "killed";
                } catch (SQLException e) {
                    r = err(e);
                }
                return ("kill=" + r + " victim=" + q(c1, "SELECT 'alive'")).replace(String.valueOf(tid), "<victim>");
            }
        });
        check("kill_unknown", () -> {
            try (Connection c = connect()) {
                exec(c, "KILL QUERY 999999999");
                return "killed";
            }
        });
        check("query_timeout", () -> {
            try (Connection c = connect(); Statement s = c.createStatement()) {
                s.setQueryTimeout(1);
                String r;
                try {
                    r = rows(s.executeQuery("SELECT SLEEP(5)")).toString();
                } catch (SQLException e) {
                    r = err(e);
                }
                return r + " after=" + q(c, "SELECT 'alive'");
            }
        });
        check("is_valid_reset", () -> {
            try (Connection c = connect()) {
                exec(c, "SET @x = 1");
                boolean v = c.isValid(5);
                return "valid=" + v + " " + q(c, "SELECT @x");
            }
        });
        pool.shutdownNow();

        for (String mode : new String[] {"client", "server"}) {
            check("prepared_" + mode, () -> {
                try (Connection c = connect("useServerPrepStmts=" + mode.equals("server"))) {
                    List<Object> out = new ArrayList<>();
                    try (PreparedStatement ps = c.prepareStatement("SELECT ? + 1, ?, ?, CAST(? AS DECIMAL(10,2)), ?")) {
                        ps.setInt(1, 41);
                        ps.setString(2, "x'y");
                        ps.setNull(3, Types.VARCHAR);
                        ps.setBigDecimal(4, new java.math.BigDecimal("1.5"));
                        ps.setBytes(5, new byte[] {0, 1, (byte) 0xff});
                        out.add(rows(ps.executeQuery()));
                    }
                    String t = "drv_j_ps_" + mode;
                    exec(c, "DROP TABLE IF EXISTS " + t);
                    exec(c, "CREATE TABLE " + t + " (id INT PRIMARY KEY, d DATETIME(3), f DOUBLE, s TEXT)");
                    try (PreparedStatement ps = c.prepareStatement("INSERT INTO " + t + " VALUES (?, ?, ?, ?)")) {
                        for (int i = 1; i <= 3; i++) {
                            ps.setInt(1, i);
                            ps.setString(2, "2024-01-0" + i + " 01:02:03.004");
                            ps.setDouble(3, i / 3.0);
                            ps.setString(4, "s".repeat(i));
                            ps.executeUpdate();
                        }
                    }
                    try (PreparedStatement ps = c.prepareStatement("SELECT id, CAST(d AS CHAR), ROUND(f, 6), s FROM " + t + " WHERE id >= ? ORDER BY id")) {
                        ps.setInt(1, 2);
                        out.add(rows(ps.executeQuery()));
                        ps.setInt(1, 3);
                        out.add(rows(ps.executeQuery()));
                    }
                    return out;
                }
            });
        }
        check("prepared_error", () -> {
            try (Connection c = connect("useServerPrepStmts=true");
                 PreparedStatement ps = c.prepareStatement("SELECT * FROM drv_no_such_table WHERE id = ?")) {
                ps.setInt(1, 1);
                return rows(ps.executeQuery());
            }
        });
        check("multi_statements", () -> {
            try (Connection c = connect("allowMultiQueries=true"); Statement s = c.createStatement()) {
                List<Object> sets = new ArrayList<>();
                boolean isRs = s.execute("SELECT 1; SELECT 'two', 2; DO 3");
                while (true) {
                    if (isRs) {
                        sets.add(rows(s.getResultSet()));
                    } else {
                        int n = s.getUpdateCount();
                        if (n == -1) {
                            break;
                        }
                        sets.add("update " + n);
                    }
                    isRs = s.getMoreResults();
                }
                return sets;
            }
        });
        for (String mode : new String[] {"client", "server"}) {
            check("procedure_" + mode, () -> {
                try (Connection c = connect("useServerPrepStmts=" + mode.equals("server"));
                     CallableStatement cs = c.prepareCall("{call drv_proc(?, ?)}")) {
                    cs.setInt(1, 5);
                    cs.registerOutParameter(2, Types.INTEGER);
                    List<Object> sets = new ArrayList<>();
                    boolean isRs = cs.execute();
                    while (true) {
                        if (isRs) {
                            sets.add(rows(cs.getResultSet()));
                        } else if (cs.getUpdateCount() == -1) {
                            break;
                        }
                        isRs = cs.getMoreResults();
                    }
                    return "sets=" + sets + " out=" + cs.getInt(2);
                }
            });
        }
        check("transaction", () -> {
            try (Connection c = connect(); Connection w = connect()) {
                exec(c, "DROP TABLE IF EXISTS drv_j_tx");
                exec(c, "CREATE TABLE drv_j_tx (id INT PRIMARY KEY)");
                c.setAutoCommit(false);
                exec(c, "INSERT INTO drv_j_tx VALUES (1)");
                c.rollback();
                Object n1 = one(w, "SELECT COUNT(*) FROM drv_j_tx");
                exec(c, "INSERT INTO drv_j_tx VALUES (2)");
                Object mid = one(w, "SELECT COUNT(*) FROM drv_j_tx");
                c.commit();
                Object n2 = one(w, "SELECT COUNT(*) FROM drv_j_tx");
                c.setAutoCommit(true);
                return "after_rollback=" + n1 + " uncommitted_seen=" + mid + " after_commit=" + n2;
            }
        });
        check("batch_bulk", batch("drv_j_bulk", "useBulkStmts=true&rewriteBatchedStatements=false"));
        check("batch_bulk_server_prep", batch("drv_j_bulk_sp", "useBulkStmts=true&useServerPrepStmts=true&rewriteBatchedStatements=false"));
        check("batch_plain", batch("drv_j_plain", "useBulkStmts=false&rewriteBatchedStatements=false"));
        check("batch_rewrite", batch("drv_j_rewrite", "useBulkStmts=false&rewriteBatchedStatements=true"));
        check("affected_rows", () -> {
            try (Connection c = connect(); Connection c2 = connect("useAffectedRows=true")) {
                exec(c, "DROP TABLE IF EXISTS drv_j_aff");
                exec(c, "CREATE TABLE drv_j_aff (id INT PRIMARY KEY, v INT)");
                exec(c, "INSERT INTO drv_j_aff VALUES (1, 1)");
                int found, changed;
                try (Statement s = c.createStatement()) {
                    found = s.executeUpdate("UPDATE drv_j_aff SET v = 1 WHERE id = 1");
                }
                try (Statement s = c2.createStatement()) {
                    changed = s.executeUpdate("UPDATE drv_j_aff SET v = 1 WHERE id = 1");
                }
                return "found_rows=" + found + " changed=" + changed;
            }
        });
        check("generated_keys", () -> {
            try (Connection c = connect(); Statement s = c.createStatement()) {
                exec(c, "DROP TABLE IF EXISTS drv_j_ai");
                exec(c, "CREATE TABLE drv_j_ai (id INT AUTO_INCREMENT PRIMARY KEY, v INT)");
                s.executeUpdate("INSERT INTO drv_j_ai (v) VALUES (1), (2)", Statement.RETURN_GENERATED_KEYS);
                List<List<Object>> k = rows(s.getGeneratedKeys());
                return k + " LAST_INSERT_ID()=" + one(c, "SELECT LAST_INSERT_ID()");
            }
        });
        check("compression", () -> {
            try (Connection c = connect("useCompression=true")) {
                return q(c, "SHOW SESSION STATUS LIKE 'Compression'") + " "
                        + q(c, "SELECT LENGTH(REPEAT('abc', 400000)), MD5(REPEAT('abc', 400000))");
            }
        });
        check("load_data_local", () -> {
            String path = WORK + "/infile-connectorj.csv";
            try (FileWriter fw = new FileWriter(path)) {
                for (int i = 1; i <= 1000; i++) {
                    fw.write(i + ",row " + i + "\n");
                }
            }
            try (Connection c = connect("allowLocalInfile=true"); Statement s = c.createStatement()) {
                exec(c, "DROP TABLE IF EXISTS drv_j_load");
                exec(c, "CREATE TABLE drv_j_load (id INT PRIMARY KEY, v VARCHAR(20))");
                int n = s.executeUpdate("LOAD DATA LOCAL INFILE '" + path + "' INTO TABLE drv_j_load FIELDS TERMINATED BY ','");
                return n + " " + q(c, "SELECT COUNT(*), SUM(id), MAX(v) FROM drv_j_load");
            }
        });
        for (int fetch : new int[] {0, 1000}) {
            check("large_result_fetch" + fetch, () -> {
                try (Connection c = connect(); Statement s = c.createStatement()) {
                    s.setFetchSize(fetch);
                    long n = 0, sum = 0, len = 0;
                    try (ResultSet rs = s.executeQuery("SELECT seq, REPEAT('x', seq % 100) FROM seq_1_to_200000")) {
                        while (rs.next()) {
                            n++;
                            sum += rs.getLong(1);
                            len += rs.getString(2).length();
                        }
                    }
                    return "rows=" + n + " sum=" + sum + " bytes=" + len + " after=" + q(c, "SELECT 'alive'");
                }
            });
        }
        check("big_value", () -> {
            try (Connection c = connect()) {
                String v = (String) one(c, "SELECT REPEAT('y', 20 * 1024 * 1024)");
                return "len=" + v.length() + " md5=" + md5(v.getBytes(StandardCharsets.UTF_8));
            }
        });
        check("big_insert", () -> {
            try (Connection c = connect("useServerPrepStmts=true")) {
                exec(c, "DROP TABLE IF EXISTS drv_j_big");
                exec(c, "CREATE TABLE drv_j_big (b LONGBLOB)");
                byte[] blob = new byte[17 * 1024 * 1024];
                for (int i = 0; i < blob.length; i++) {
                    blob[i] = (byte) i;
                }
                try (PreparedStatement ps = c.prepareStatement("INSERT INTO drv_j_big VALUES (?)")) {
                    ps.setBytes(1, blob);
                    ps.executeUpdate();
                }
                return q(c, "SELECT LENGTH(b), MD5(b) FROM drv_j_big");
            }
        });
        check("error_syntax", stmt("SELEC 1"));
        check("error_no_table", stmt("SELECT * FROM drv_no_such_table"));
        check("error_too_long", () -> {
            try (Connection c = connect()) {
                exec(c, "INSERT INTO drv_t (k) VALUES (REPEAT('k', 100))");
                return "inserted";
            }
        });
        check("warnings", () -> {
            try (Connection c = connect(); Statement s = c.createStatement()) {
                List<List<Object>> r = rows(s.executeQuery("SELECT 1/0, CAST('12abc' AS INT)"));
                List<String> w = new ArrayList<>();
                for (SQLWarning x = s.getWarnings(); x != null; x = x.getNextWarning()) {
                    w.add(x.getErrorCode() + " " + x.getSQLState() + " " + x.getMessage());
                }
                return r + " " + w;
            }
        });
        check("charset", stmt("SELECT '\uD83D\uDE00', CHAR_LENGTH('\uD83D\uDE00'), HEX('\u00e9')"));
    }
}
