<?php
// PHP mysqli and PDO (both on mysqlnd) checks for scripts/drivers.sh.
//
// Usage: php checks.php mysqli|pdo, with DRV_HOST, DRV_PORT, DRV_TLS (1 = TLS
// with DRV_CA), DRV_WORK in the environment. Prints one stable line per
// check, "name: result"; lines starting with "#" are not compared.

declare(strict_types=1);

$drv = $argv[1] ?? '';
if ($drv !== 'mysqli' && $drv !== 'pdo') {
    fwrite(STDERR, "usage: checks.php mysqli|pdo\n");
    exit(2);
}
$HOST = getenv('DRV_HOST');
$PORT = (int)getenv('DRV_PORT');
$TLS = getenv('DRV_TLS') === '1';
$CA = (string)getenv('DRV_CA');
$WORK = (string)getenv('DRV_WORK');
ini_set('default_socket_timeout', '60');
ini_set('mysqlnd.net_read_timeout', '60');

function err(Throwable $e): string
{
    if ($e instanceof mysqli_sql_exception) {
        return sprintf('ERR %d %s %s', $e->getCode(), $e->getSqlState(), $e->getMessage());
    }
    if ($e instanceof PDOException) {
        $i = $e->errorInfo;
        if (is_array($i) && isset($i[1])) {
            return sprintf('ERR %d %s %s', $i[1], $i[0], $i[2]);
        }
        return sprintf('ERR %s %s', $e->getCode(), $e->getMessage());
    }
    return sprintf('EXC %s %s', get_class($e), $e->getMessage());
}

function check(string $name, callable $fn): void
{
    try {
        $r = $fn();
    } catch (Throwable $e) {
        $r = err($e);
    }
    if (!is_string($r)) {
        $r = json_encode($r, JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES | JSON_INVALID_UTF8_SUBSTITUTE);
    }
    echo "$name: $r\n";
}

function write_infile(string $name): string
{
    global $WORK;
    $path = "$WORK/infile-$name.csv";
    $data = '';
    for ($i = 1; $i <= 1000; $i++) {
        $data .= "$i,row $i\n";
    }
    file_put_contents($path, $data);
    return $path;
}

// ---------------------------------------------------------------- mysqli

mysqli_report(MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT);

function my(string $user = 'drv_user', string $pw = 'drvpass', ?string $db = 'drvtest', int $flags = 0, array $opts = []): mysqli
{
    global $HOST, $PORT, $TLS, $CA;
    $m = mysqli_init();
    $m->options(MYSQLI_OPT_CONNECT_TIMEOUT, 10);
    $m->options(MYSQLI_OPT_READ_TIMEOUT, 60);
    foreach ($opts as $k => $v) {
        $m->options($k, $v);
    }
    if ($TLS) {
        $m->ssl_set(null, null, $CA, null, null);
        $flags |= MYSQLI_CLIENT_SSL;
    }
    $m->real_connect($HOST, $user, $pw, $db, $PORT, null, $flags);
    $m->set_charset('utf8mb4');
    return $m;
}

function mq(mysqli $m, string $sql): array
{
    $r = $m->query($sql);
    if ($r === true) {
        return ['affected' => $m->affected_rows];
    }
    $rows = $r->fetch_all(MYSQLI_NUM);
    $r->free();
    return $rows;
}

function mone(mysqli $m, string $sql)
{
    return mq($m, $sql)[0][0];
}

function mwait(mysqli $w, int $tid, string $state): bool
{
    $deadline = microtime(true) + 30;
    while (microtime(true) < $deadline) {
        if (mq($w, "SELECT 1 FROM information_schema.PROCESSLIST WHERE ID = $tid AND STATE = '$state'")) {
            return true;
        }
        usleep(50000);
    }
    return false;
}

function mysqli_checks(): void
{
    check('connect', fn() => mq(my(), 'SELECT CURRENT_USER(), DATABASE(), @@character_set_client'));
    check('thread_id', function () {
        $m = my();
        $a = $m->thread_id;
        $b = (int)mone($m, 'SELECT CONNECTION_ID()');
        return $a === $b ? 'equal' : "differ (driver $a, CONNECTION_ID() $b)";
    });
    check('server', fn() => 'version=' . my()->server_info);
    $login = fn(string $u, string $p, ?string $db = 'drvtest') => fn() => mone(my($u, $p, $db), 'SELECT CURRENT_USER()');
    check('wrong_password', $login('drv_user', 'wrong'));
    check('locked_account', $login('drv_locked', 'lockedpass'));
    check('host_pattern_specific', $login('drv_host', 'hostpass1'));
    check('host_pattern_shadowed', $login('drv_host', 'hostpass2'));
    check('host_pattern_nomatch', $login('drv_far', 'farpass'));
    check('unknown_user', $login('drv_nobody', 'x'));
    check('no_password', $login('drv_nopw', ''));
    check('expired_password', $login('drv_expired', 'expiredpass'));
    check('unknown_db', $login('drv_user', 'drvpass', 'drv_nodb'));
    check('db_denied', $login('drv_other', 'otherpass', 'mysql'));

    check('kill_query', function () {
        $c1 = my();
        $c2 = my();
        $tid = $c1->thread_id;
        $c1->query('SELECT SLEEP(60)', MYSQLI_ASYNC);
        if (!mwait($c2, $tid, 'User sleep')) {
            return 'sleeping thread never seen';
        }
        $k = mq($c2, "KILL QUERY $tid");
        $links = $errors = $reject = [$c1];
        mysqli_poll($links, $errors, $reject, 60);
        try {
            $r = $c1->reap_async_query();
            $s = $r === true ? 'ok' : json_encode($r->fetch_all(MYSQLI_NUM));
        } catch (Throwable $e) {
            $s = err($e);
        }
        return 'kill=' . json_encode($k) . " sleeper=$s after=" . json_encode(mq($c1, "SELECT 'alive'"));
    });
    check('kill_connection', function () {
        $c1 = my();
        $c2 = my();
        $k = mq($c2, 'KILL ' . $c1->thread_id);
        try {
            $after = json_encode(mq($c1, 'SELECT 1'));
        } catch (Throwable $e) {
            $after = err($e);
        }
        return 'kill=' . json_encode($k) . " victim=$after";
    });
    check('com_process_kill', function () {
        $c1 = my();
        $c2 = my();
        $tid = $c1->thread_id;
        $k = $c2->kill($tid); // mysqlnd sends COM_PROCESS_KILL
        $deadline = microtime(true) + 30;
        $gone = false;
        while (microtime(true) < $deadline) {
            if (!mq($c2, "SELECT 1 FROM information_schema.PROCESSLIST WHERE ID = $tid")) {
                $gone = true;
                break;
            }
            usleep(50000);
        }
        return 'kill=' . json_encode($k) . ' victim gone=' . json_encode($gone);
    });
    check('kill_other_user', function () {
        $c1 = my();
        $c2 = my('drv_other', 'otherpass');
        $tid = $c1->thread_id;
        try {
            $r = json_encode(mq($c2, "KILL $tid"));
        } catch (Throwable $e) {
            $r = err($e);
        }
        return str_replace((string)$tid, '<victim>', "kill=$r victim=" . json_encode(mq($c1, "SELECT 'alive'")));
    });
    check('kill_unknown', fn() => mq(my(), 'KILL QUERY 999999999'));
    check('change_user', function () {
        $m = my();
        $before = $m->thread_id;
        mq($m, 'SET @x = 1');
        $m->change_user('drv_other', 'otherpass', 'drvtest');
        return [mq($m, "SELECT CURRENT_USER(), DATABASE(), @x, CONNECTION_ID() = $before"), $m->thread_id === $before];
    });
    check('change_user_wrong', function () {
        $m = my();
        $before = $m->thread_id;
        mq($m, 'SET @x = 1');
        try {
            $m->change_user('drv_other', 'wrong', 'drvtest');
            $r = 'changed';
        } catch (Throwable $e) {
            $r = err($e);
        }
        try {
            $after = json_encode(mq($m, "SELECT CURRENT_USER(), DATABASE(), @x, CONNECTION_ID() = $before"));
        } catch (Throwable $e) {
            $after = err($e);
        }
        return "change=$r after=$after";
    });
    check('select_db', function () {
        $m = my();
        $m->select_db('drvtest');
        $r = [mone($m, 'SELECT DATABASE()')];
        try {
            $m->select_db('mysql');
            $r[] = 'selected';
        } catch (Throwable $e) {
            $r[] = err($e);
        }
        return $r;
    });
    check('ping', fn() => my()->ping());
    check('prepared', function () {
        $m = my();
        $s = $m->prepare('SELECT ? + 1, ?, ?, CAST(? AS DECIMAL(10,2))');
        $a = 41;
        $b = "x'y";
        $c = null;
        $d = 1.5;
        $s->bind_param('isid', $a, $b, $c, $d);
        $s->execute();
        $out = [$s->get_result()->fetch_all(MYSQLI_NUM)];
        mq($m, 'DROP TABLE IF EXISTS drv_php_ps');
        mq($m, 'CREATE TABLE drv_php_ps (id INT PRIMARY KEY, d DATETIME(3), f DOUBLE, s TEXT)');
        $ins = $m->prepare('INSERT INTO drv_php_ps VALUES (?, ?, ?, ?)');
        for ($i = 1; $i <= 3; $i++) {
            $dt = sprintf('2024-01-0%d 01:02:03.004', $i);
            $f = $i / 3;
            $str = str_repeat('s', $i);
            $ins->bind_param('isds', $i, $dt, $f, $str);
            $ins->execute();
        }
        $sel = $m->prepare('SELECT id, d, ROUND(f, 6), s FROM drv_php_ps WHERE id >= ? ORDER BY id');
        $min = 2;
        $sel->bind_param('i', $min);
        $sel->execute();
        $out[] = $sel->get_result()->fetch_all(MYSQLI_NUM);
        // A cursor (COM_STMT_FETCH) over the same statement.
        $cur = $m->prepare('SELECT id, s FROM drv_php_ps ORDER BY id');
        $cur->attr_set(MYSQLI_STMT_ATTR_CURSOR_TYPE, MYSQLI_CURSOR_TYPE_READ_ONLY);
        $cur->attr_set(MYSQLI_STMT_ATTR_PREFETCH_ROWS, 1);
        $cur->execute();
        $cur->bind_result($id, $sv);
        $rows = [];
        while ($cur->fetch()) {
            $rows[] = [$id, $sv];
        }
        $out[] = $rows;
        $out[] = mq($m, "SHOW SESSION STATUS LIKE 'Com_stmt_fetch'");
        return $out;
    });
    check('send_long_data', function () {
        $m = my();
        mq($m, 'DROP TABLE IF EXISTS drv_php_long');
        mq($m, 'CREATE TABLE drv_php_long (b LONGBLOB)');
        $s = $m->prepare('INSERT INTO drv_php_long VALUES (?)');
        $null = null;
        $s->bind_param('b', $null);
        $chunk = str_repeat(implode('', array_map('chr', range(0, 255))), 4096); // 1 MiB
        for ($i = 0; $i < 17; $i++) {
            $s->send_long_data(0, $chunk);
        }
        $s->execute();
        return mq($m, 'SELECT LENGTH(b), MD5(b) FROM drv_php_long');
    });
    check('prepared_error', function () {
        $m = my();
        $m->prepare('SELECT * FROM drv_no_such_table WHERE id = ?');
        return 'prepared';
    });
    check('multi_statements', function () {
        $m = my();
        $m->multi_query("SELECT 1; SELECT 'two', 2; DO 3");
        $sets = [];
        do {
            $r = $m->store_result();
            $sets[] = $r ? $r->fetch_all(MYSQLI_NUM) : ['affected' => $m->affected_rows];
        } while ($m->more_results() && $m->next_result());
        return $sets;
    });
    check('procedure', function () {
        $m = my();
        $m->multi_query('CALL drv_proc(5, @y)');
        $sets = [];
        do {
            $r = $m->store_result();
            $sets[] = $r ? $r->fetch_all(MYSQLI_NUM) : 'ok';
        } while ($m->more_results() && $m->next_result());
        return ['sets' => $sets, 'out' => mq($m, 'SELECT @y')];
    });
    check('procedure_prepared', function () {
        $m = my();
        $s = $m->prepare('CALL drv_proc(?, @y)');
        $x = 7;
        $s->bind_param('i', $x);
        $s->execute();
        $sets = [];
        do {
            $r = $s->get_result();
            $sets[] = $r ? $r->fetch_all(MYSQLI_NUM) : 'ok';
        } while ($s->more_results() && $s->next_result());
        $s->close();
        return ['sets' => $sets, 'out' => mq($m, 'SELECT @y')];
    });
    check('transaction', function () {
        $c = my();
        $w = my();
        mq($c, 'DROP TABLE IF EXISTS drv_php_tx');
        mq($c, 'CREATE TABLE drv_php_tx (id INT PRIMARY KEY)');
        $c->begin_transaction();
        mq($c, 'INSERT INTO drv_php_tx VALUES (1)');
        $c->rollback();
        $n1 = mone($w, 'SELECT COUNT(*) FROM drv_php_tx');
        $c->begin_transaction();
        mq($c, 'INSERT INTO drv_php_tx VALUES (2)');
        $mid = mone($w, 'SELECT COUNT(*) FROM drv_php_tx');
        $c->commit();
        $n2 = mone($w, 'SELECT COUNT(*) FROM drv_php_tx');
        return "after_rollback=$n1 uncommitted_seen=$mid after_commit=$n2";
    });
    check('batch', function () {
        $m = my();
        mq($m, 'DROP TABLE IF EXISTS drv_php_batch');
        mq($m, 'CREATE TABLE drv_php_batch (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(20))');
        $before = mq($m, "SHOW SESSION STATUS LIKE 'Com_stmt_execute'")[0][1];
        $s = $m->prepare('INSERT INTO drv_php_batch (v) VALUES (?)');
        for ($i = 0; $i < 100; $i++) {
            $v = "v$i";
            $s->bind_param('s', $v);
            $s->execute();
        }
        $after = mq($m, "SHOW SESSION STATUS LIKE 'Com_stmt_execute'")[0][1];
        return ['executes' => $after - $before, 'rows' => mq($m, 'SELECT COUNT(*), MIN(id), MAX(id) FROM drv_php_batch')];
    });
    check('affected_rows', function () {
        $c = my();
        $c2 = my('drv_user', 'drvpass', 'drvtest', MYSQLI_CLIENT_FOUND_ROWS);
        mq($c, 'DROP TABLE IF EXISTS drv_php_aff');
        mq($c, 'CREATE TABLE drv_php_aff (id INT PRIMARY KEY, v INT)');
        mq($c, 'INSERT INTO drv_php_aff VALUES (1, 1)');
        mq($c, 'UPDATE drv_php_aff SET v = 1 WHERE id = 1');
        $a = [$c->affected_rows, $c->info];
        mq($c2, 'UPDATE drv_php_aff SET v = 1 WHERE id = 1');
        return ['changed' => $a, 'found_rows' => [$c2->affected_rows, $c2->info]];
    });
    check('last_insert_id', function () {
        $m = my();
        mq($m, 'DROP TABLE IF EXISTS drv_php_ai');
        mq($m, 'CREATE TABLE drv_php_ai (id INT AUTO_INCREMENT PRIMARY KEY, v INT)');
        mq($m, 'INSERT INTO drv_php_ai (v) VALUES (1), (2)');
        $a = $m->insert_id;
        $s = $m->prepare('INSERT INTO drv_php_ai (v) VALUES (3)');
        $s->execute();
        return [$a, $s->insert_id, mone($m, 'SELECT LAST_INSERT_ID()')];
    });
    check('compression', function () {
        // A short read timeout: mysqlnd compresses even when the server does
        // not offer it, and a server that cannot read that never answers.
        $m = my('drv_user', 'drvpass', 'drvtest', MYSQLI_CLIENT_COMPRESS, [MYSQLI_OPT_READ_TIMEOUT => 10]);
        return [mq($m, "SHOW SESSION STATUS LIKE 'Compression'"), mq($m, "SELECT LENGTH(REPEAT('abc', 400000)), MD5(REPEAT('abc', 400000))")];
    });
    check('load_data_local', function () {
        $path = write_infile('mysqli');
        $m = my('drv_user', 'drvpass', 'drvtest', 0, [MYSQLI_OPT_LOCAL_INFILE => true]);
        mq($m, 'DROP TABLE IF EXISTS drv_php_load');
        mq($m, 'CREATE TABLE drv_php_load (id INT PRIMARY KEY, v VARCHAR(20))');
        $r = mq($m, "LOAD DATA LOCAL INFILE '$path' INTO TABLE drv_php_load FIELDS TERMINATED BY ','");
        return [$r, $m->info, mq($m, 'SELECT COUNT(*), SUM(id), MAX(v) FROM drv_php_load')];
    });
    check('large_result', function () {
        $m = my();
        $r = $m->query("SELECT seq, REPEAT('x', seq % 100) FROM seq_1_to_200000", MYSQLI_USE_RESULT);
        $n = $s = $len = 0;
        while ($row = $r->fetch_row()) {
            $n++;
            $s += (int)$row[0];
            $len += strlen($row[1]);
        }
        return "rows=$n sum=$s bytes=$len";
    });
    check('big_value', function () {
        $v = mone(my(), "SELECT REPEAT('y', 20 * 1024 * 1024)");
        return 'len=' . strlen($v) . ' md5=' . md5($v);
    });
    $stmt = fn(string $sql) => fn() => mq(my(), $sql);
    check('error_syntax', $stmt('SELEC 1'));
    check('error_no_table', $stmt('SELECT * FROM drv_no_such_table'));
    check('error_too_long', $stmt("INSERT INTO drv_t (k) VALUES (REPEAT('k', 100))"));
    check('warnings', function () {
        $m = my();
        $rows = mq($m, "SELECT 1/0, CAST('12abc' AS INT)");
        $wc = $m->warning_count;
        $w = [];
        $x = $m->get_warnings();
        while ($x) {
            $w[] = [$x->errno, $x->sqlstate, $x->message];
            if (!$x->next()) {
                break;
            }
        }
        return ['rows' => $rows, 'count' => $wc, 'warnings' => $w];
    });
    check('charset', $stmt("SELECT '\u{1F600}', CHAR_LENGTH('\u{1F600}'), HEX('\u{e9}')"));
}

// ---------------------------------------------------------------- PDO

function pdo(string $user = 'drv_user', string $pw = 'drvpass', ?string $db = 'drvtest', array $opts = []): PDO
{
    global $HOST, $PORT, $TLS, $CA;
    $dsn = "mysql:host=$HOST;port=$PORT;charset=utf8mb4" . ($db !== null ? ";dbname=$db" : '');
    $o = [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION, PDO::ATTR_TIMEOUT => 10] + $opts;
    if ($TLS) {
        $o[PDO::MYSQL_ATTR_SSL_CA] = $CA;
    }
    return new PDO($dsn, $user, $pw, $o);
}

function pq(PDO $p, string $sql): array
{
    return $p->query($sql)->fetchAll(PDO::FETCH_NUM);
}

function pdo_checks(): void
{
    check('connect', fn() => pq(pdo(), 'SELECT CURRENT_USER(), DATABASE(), @@character_set_client'));
    check('server', fn() => 'version=' . pdo()->getAttribute(PDO::ATTR_SERVER_VERSION));
    $login = fn(string $u, string $p, ?string $db = 'drvtest') => fn() => pq(pdo($u, $p, $db), 'SELECT CURRENT_USER()')[0][0];
    check('wrong_password', $login('drv_user', 'wrong'));
    check('locked_account', $login('drv_locked', 'lockedpass'));
    check('host_pattern_specific', $login('drv_host', 'hostpass1'));
    check('host_pattern_shadowed', $login('drv_host', 'hostpass2'));
    check('host_pattern_nomatch', $login('drv_far', 'farpass'));
    check('unknown_user', $login('drv_nobody', 'x'));
    check('no_password', $login('drv_nopw', ''));
    check('expired_password', $login('drv_expired', 'expiredpass'));
    check('unknown_db', $login('drv_user', 'drvpass', 'drv_nodb'));
    check('db_denied', $login('drv_other', 'otherpass', 'mysql'));
    check('kill_connection', function () {
        $c1 = pdo();
        $c2 = pdo();
        $tid = pq($c1, 'SELECT CONNECTION_ID()')[0][0];
        $c2->exec("KILL $tid");
        try {
            $after = json_encode(pq($c1, 'SELECT 1'));
        } catch (Throwable $e) {
            $after = err($e);
        }
        return "victim=$after";
    });
    check('kill_other_user', function () {
        $c1 = pdo();
        $c2 = pdo('drv_other', 'otherpass');
        $tid = pq($c1, 'SELECT CONNECTION_ID()')[0][0];
        try {
            $r = (string)$c2->exec("KILL $tid");
        } catch (Throwable $e) {
            $r = err($e);
        }
        return str_replace((string)$tid, '<victim>', "kill=$r victim=" . json_encode(pq($c1, "SELECT 'alive'")));
    });
    foreach (['native' => false, 'emulated' => true] as $kind => $emulate) {
        check("prepared_$kind", function () use ($emulate, $kind) {
            $p = pdo('drv_user', 'drvpass', 'drvtest', [PDO::ATTR_EMULATE_PREPARES => $emulate]);
            $s = $p->prepare('SELECT ? + 1, ?, ?, CAST(? AS DECIMAL(10,2))');
            $s->bindValue(1, 41, PDO::PARAM_INT);
            $s->bindValue(2, "x'y");
            $s->bindValue(3, null, PDO::PARAM_NULL);
            $s->bindValue(4, '1.5');
            $s->execute();
            $out = [$s->fetchAll(PDO::FETCH_NUM)];
            $p->exec("DROP TABLE IF EXISTS drv_pdo_ps_$kind");
            $p->exec("CREATE TABLE drv_pdo_ps_$kind (id INT PRIMARY KEY, d DATETIME(3), f DOUBLE, s TEXT, b BLOB)");
            $ins = $p->prepare("INSERT INTO drv_pdo_ps_$kind VALUES (?, ?, ?, ?, ?)");
            for ($i = 1; $i <= 3; $i++) {
                $ins->execute([$i, sprintf('2024-01-0%d 01:02:03.004', $i), $i / 3, str_repeat('s', $i), "\x00\x01\xff"]);
            }
            $sel = $p->prepare("SELECT id, d, ROUND(f, 6), s, HEX(b) FROM drv_pdo_ps_$kind WHERE id >= ? ORDER BY id");
            $sel->execute([2]);
            $out[] = $sel->fetchAll(PDO::FETCH_NUM);
            return $out;
        });
    }
    check('prepared_error', function () {
        $p = pdo('drv_user', 'drvpass', 'drvtest', [PDO::ATTR_EMULATE_PREPARES => false]);
        $p->prepare('SELECT * FROM drv_no_such_table WHERE id = ?');
        return 'prepared';
    });
    check('multi_statements', function () {
        $p = pdo('drv_user', 'drvpass', 'drvtest', [PDO::MYSQL_ATTR_MULTI_STATEMENTS => true]);
        $s = $p->query("SELECT 1; SELECT 'two', 2; DO 3");
        $sets = [];
        do {
            $sets[] = $s->columnCount() ? $s->fetchAll(PDO::FETCH_NUM) : ['affected' => $s->rowCount()];
        } while ($s->nextRowset());
        return $sets;
    });
    foreach (['native' => false, 'emulated' => true] as $kind => $emulate) {
        check("procedure_$kind", function () use ($emulate) {
            $p = pdo('drv_user', 'drvpass', 'drvtest', [PDO::ATTR_EMULATE_PREPARES => $emulate]);
            $s = $p->prepare('CALL drv_proc(?, @y)');
            $s->execute([5]);
            $sets = [];
            do {
                $sets[] = $s->columnCount() ? $s->fetchAll(PDO::FETCH_NUM) : 'ok';
            } while ($s->nextRowset());
            $s->closeCursor();
            return ['sets' => $sets, 'out' => pq($p, 'SELECT @y')];
        });
    }
    check('transaction', function () {
        $c = pdo();
        $w = pdo();
        $c->exec('DROP TABLE IF EXISTS drv_pdo_tx');
        $c->exec('CREATE TABLE drv_pdo_tx (id INT PRIMARY KEY)');
        $c->beginTransaction();
        $c->exec('INSERT INTO drv_pdo_tx VALUES (1)');
        $c->rollBack();
        $n1 = pq($w, 'SELECT COUNT(*) FROM drv_pdo_tx')[0][0];
        $c->beginTransaction();
        $c->exec('INSERT INTO drv_pdo_tx VALUES (2)');
        $mid = pq($w, 'SELECT COUNT(*) FROM drv_pdo_tx')[0][0];
        $c->commit();
        $n2 = pq($w, 'SELECT COUNT(*) FROM drv_pdo_tx')[0][0];
        return "after_rollback=$n1 uncommitted_seen=$mid after_commit=$n2";
    });
    check('batch', function () {
        $p = pdo('drv_user', 'drvpass', 'drvtest', [PDO::ATTR_EMULATE_PREPARES => false]);
        $p->exec('DROP TABLE IF EXISTS drv_pdo_batch');
        $p->exec('CREATE TABLE drv_pdo_batch (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(20))');
        $before = pq($p, "SHOW SESSION STATUS LIKE 'Com_stmt_execute'")[0][1];
        $s = $p->prepare('INSERT INTO drv_pdo_batch (v) VALUES (?)');
        for ($i = 0; $i < 100; $i++) {
            $s->execute(["v$i"]);
        }
        $after = pq($p, "SHOW SESSION STATUS LIKE 'Com_stmt_execute'")[0][1];
        return ['executes' => $after - $before, 'rows' => pq($p, 'SELECT COUNT(*), MIN(id), MAX(id) FROM drv_pdo_batch')];
    });
    check('affected_rows', function () {
        $c = pdo();
        $c2 = pdo('drv_user', 'drvpass', 'drvtest', [PDO::MYSQL_ATTR_FOUND_ROWS => true]);
        $c->exec('DROP TABLE IF EXISTS drv_pdo_aff');
        $c->exec('CREATE TABLE drv_pdo_aff (id INT PRIMARY KEY, v INT)');
        $c->exec('INSERT INTO drv_pdo_aff VALUES (1, 1)');
        return ['changed' => $c->exec('UPDATE drv_pdo_aff SET v = 1 WHERE id = 1'),
            'found_rows' => $c2->exec('UPDATE drv_pdo_aff SET v = 1 WHERE id = 1')];
    });
    check('last_insert_id', function () {
        $p = pdo();
        $p->exec('DROP TABLE IF EXISTS drv_pdo_ai');
        $p->exec('CREATE TABLE drv_pdo_ai (id INT AUTO_INCREMENT PRIMARY KEY, v INT)');
        $p->exec('INSERT INTO drv_pdo_ai (v) VALUES (1), (2)');
        $a = $p->lastInsertId();
        $p->prepare('INSERT INTO drv_pdo_ai (v) VALUES (?)')->execute([3]);
        return [$a, $p->lastInsertId()];
    });
    check('compression', function () {
        // A short read timeout, as for mysqli.
        $old = ini_set('mysqlnd.net_read_timeout', '10');
        try {
            $p = pdo('drv_user', 'drvpass', 'drvtest', [PDO::MYSQL_ATTR_COMPRESS => true]);
        } finally {
            ini_set('mysqlnd.net_read_timeout', (string)$old);
        }
        return [pq($p, "SHOW SESSION STATUS LIKE 'Compression'"), pq($p, "SELECT LENGTH(REPEAT('abc', 400000)), MD5(REPEAT('abc', 400000))")];
    });
    check('load_data_local', function () {
        $path = write_infile('pdo');
        $p = pdo('drv_user', 'drvpass', 'drvtest', [PDO::MYSQL_ATTR_LOCAL_INFILE => true]);
        $p->exec('DROP TABLE IF EXISTS drv_pdo_load');
        $p->exec('CREATE TABLE drv_pdo_load (id INT PRIMARY KEY, v VARCHAR(20))');
        $n = $p->exec("LOAD DATA LOCAL INFILE '$path' INTO TABLE drv_pdo_load FIELDS TERMINATED BY ','");
        return [$n, pq($p, 'SELECT COUNT(*), SUM(id), MAX(v) FROM drv_pdo_load')];
    });
    check('large_result', function () {
        $p = pdo('drv_user', 'drvpass', 'drvtest', [PDO::MYSQL_ATTR_USE_BUFFERED_QUERY => false]);
        $s = $p->query("SELECT seq, REPEAT('x', seq % 100) FROM seq_1_to_200000");
        $n = $sum = $len = 0;
        while ($row = $s->fetch(PDO::FETCH_NUM)) {
            $n++;
            $sum += (int)$row[0];
            $len += strlen($row[1]);
        }
        return "rows=$n sum=$sum bytes=$len";
    });
    check('big_value', function () {
        $v = pq(pdo(), "SELECT REPEAT('y', 20 * 1024 * 1024)")[0][0];
        return 'len=' . strlen($v) . ' md5=' . md5($v);
    });
    check('big_insert', function () {
        $p = pdo('drv_user', 'drvpass', 'drvtest', [PDO::ATTR_EMULATE_PREPARES => false]);
        $p->exec('DROP TABLE IF EXISTS drv_pdo_big');
        $p->exec('CREATE TABLE drv_pdo_big (b LONGBLOB)');
        $blob = str_repeat(implode('', array_map('chr', range(0, 255))), 17 * 4096);
        $s = $p->prepare('INSERT INTO drv_pdo_big VALUES (?)');
        $s->bindValue(1, $blob, PDO::PARAM_LOB);
        $s->execute();
        return pq($p, 'SELECT LENGTH(b), MD5(b) FROM drv_pdo_big');
    });
    $stmt = fn(string $sql) => fn() => pq(pdo(), $sql);
    check('error_syntax', $stmt('SELEC 1'));
    check('error_no_table', $stmt('SELECT * FROM drv_no_such_table'));
    check('error_too_long', fn() => pdo()->exec("INSERT INTO drv_t (k) VALUES (REPEAT('k', 100))"));
    check('warnings', function () {
        $p = pdo();
        return [pq($p, "SELECT 1/0, CAST('12abc' AS INT)"), pq($p, 'SHOW WARNINGS')];
    });
    check('charset', $stmt("SELECT '\u{1F600}', CHAR_LENGTH('\u{1F600}'), HEX('\u{e9}')"));
}

echo "# driver php-$drv " . PHP_VERSION . "\n";
if ($drv === 'mysqli') {
    mysqli_checks();
} else {
    pdo_checks();
}
