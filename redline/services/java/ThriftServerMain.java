/*
 * Entry point of redline's Spark Thrift Server: Spark's HiveThriftServer2, started after
 * three settings that no client session may change.
 *
 * 1. Java system properties. A HiveServer2 client may open its session with
 *    configuration {"set:system:NAME": "VALUE"}, and Hive applies it with
 *    System.getProperties().setProperty(NAME, VALUE), for the whole server, before any
 *    hook or SQL check of ours runs. The server's properties are replaced here by
 *    SessionProofProperties, which refuses every change made from Hive's session code:
 *    the session does not open, and the client reads why.
 * 2. Hive's variable substitution (hive.variable.substitute=false, put on Hive's list of
 *    settings a session cannot change): a value sent at session open stays literal, so
 *    "set:hivevar:x=${env:HOME}" does not read the server's environment. Spark's own
 *    substitution is off through spark.sql.variable.substitute (ThriftServer.command),
 *    which SqlGuard protects.
 * 3. The login check's user and password file (PasswordFileAuthenticator), read from the
 *    start command's -D settings here, once, before the first login.
 */
package redline.thrift;

import java.util.LinkedHashSet;
import java.util.List;
import java.util.Properties;
import java.util.Set;

import org.apache.hadoop.hive.conf.HiveConf;
import org.apache.spark.sql.hive.thriftserver.HiveThriftServer2;

public final class ThriftServerMain {
  /** Hive settings added to its restricted list (a session's change is refused). */
  static final List<String> RESTRICTED = List.of(
      "hive.variable.substitute", "hive.variable.substitute.depth",
      "hive.conf.restricted.list", "hive.server2.custom.authentication.class",
      "hive.server2.authentication");

  private ThriftServerMain() {}

  public static void main(String[] args) throws Exception {
    PasswordFileAuthenticator.configure(
        System.getProperty(PasswordFileAuthenticator.USER_PROPERTY),
        System.getProperty(PasswordFileAuthenticator.FILE_PROPERTY));
    String restricted = new HiveConf().getVar(HiveConf.ConfVars.HIVE_CONF_RESTRICTED_LIST);
    Set<String> names = new LinkedHashSet<>(List.of(restricted.split(",")));
    names.addAll(RESTRICTED);
    names.remove("");
    System.setProperty("hive.variable.substitute", "false");
    System.setProperty(HiveConf.ConfVars.HIVE_CONF_RESTRICTED_LIST.varname,
        String.join(",", names));
    Properties guarded = new SessionProofProperties();
    guarded.putAll(System.getProperties());
    System.setProperties(guarded);
    HiveThriftServer2.main(args);
  }

  /** System properties that Hive's session code cannot change. */
  static final class SessionProofProperties extends Properties {
    private static final long serialVersionUID = 1L;
    /** Packages whose frames on the stack mean "a client session is setting this". */
    static final List<String> SESSION_PACKAGES = List.of(
        "org.apache.hive.service.cli.session.", "org.apache.hadoop.hive.ql.processors.");

    @Override
    public synchronized Object put(Object key, Object value) {
      refuseFromSession(key);
      return super.put(key, value);
    }

    @Override
    public synchronized Object setProperty(String key, String value) {
      refuseFromSession(key);
      return super.setProperty(key, value);
    }

    @Override
    public synchronized Object remove(Object key) {
      refuseFromSession(key);
      return super.remove(key);
    }

    private static void refuseFromSession(Object key) {
      boolean fromSession = StackWalker.getInstance().walk(frames -> frames.anyMatch(
          f -> SESSION_PACKAGES.stream().anyMatch(f.getClassName()::startsWith)));
      if (fromSession) {
        throw new SecurityException("redline: setting the Java system property " + key
            + " from a session (set:system:) is not allowed through the Thrift Server");
      }
    }
  }
}
