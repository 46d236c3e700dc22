-- Accounts, schema and procedure for scripts/drivers.sh, created at run time
-- on the active node as root (they replicate to the other node). tandem's
-- config lists none of these accounts: they log in with their node account.
DROP DATABASE IF EXISTS drvtest;
CREATE DATABASE drvtest;
DROP USER IF EXISTS 'drv_user'@'%', 'drv_other'@'%', 'drv_locked'@'%',
  'drv_host'@'127.0.0.1', 'drv_host'@'%', 'drv_far'@'10.254.254.%', 'drv_nopw'@'%', 'drv_expired'@'%';
CREATE USER 'drv_user'@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD('drvpass');
GRANT ALL PRIVILEGES ON drvtest.* TO 'drv_user'@'%';
CREATE USER 'drv_other'@'%' IDENTIFIED BY 'otherpass';
GRANT SELECT ON drvtest.* TO 'drv_other'@'%';
CREATE USER 'drv_locked'@'%' IDENTIFIED BY 'lockedpass' ACCOUNT LOCK;
GRANT SELECT ON drvtest.* TO 'drv_locked'@'%';
-- The more specific host wins: hostpass2 ('%') is shadowed from 127.0.0.1.
CREATE USER 'drv_host'@'127.0.0.1' IDENTIFIED BY 'hostpass1';
CREATE USER 'drv_host'@'%' IDENTIFIED BY 'hostpass2';
GRANT SELECT ON drvtest.* TO 'drv_host'@'127.0.0.1';
GRANT SELECT ON drvtest.* TO 'drv_host'@'%';
CREATE USER 'drv_far'@'10.254.254.%' IDENTIFIED BY 'farpass';
CREATE USER 'drv_nopw'@'%';
GRANT SELECT ON drvtest.* TO 'drv_nopw'@'%';
CREATE USER 'drv_expired'@'%' IDENTIFIED BY 'expiredpass' PASSWORD EXPIRE;
GRANT SELECT ON drvtest.* TO 'drv_expired'@'%';
CREATE TABLE drvtest.drv_t (id INT AUTO_INCREMENT PRIMARY KEY, k VARCHAR(20) UNIQUE, v VARCHAR(100));
DELIMITER //
CREATE PROCEDURE drvtest.drv_proc(IN x INT, OUT y INT)
BEGIN
  SELECT x AS a;
  SELECT x * 2 AS b, 'two' AS c;
  SET y = x * 3;
END //
DELIMITER ;
