/*
 * Password authentication of the Spark Thrift Server (hive.server2.authentication=CUSTOM).
 *
 * redline compiles this file when it prepares the Thrift Server (ThriftServer.prepare in
 * redline/services/thrift.py) and puts the class on the driver's class path. The server
 * starts with two system properties: redline.thrift.user, the one user name accepted, and
 * redline.thrift.passwordFile, the PATH of the 0600 file holding the password (the value
 * never appears on a command line). ThriftServerMain reads both once, before the server
 * starts (``configure``); a session cannot re-point them, whatever it does to system
 * properties later. The file's content is read at every login, so a new password takes
 * effect without a restart.
 */
package redline.thrift;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.EnumSet;
import java.util.Set;

import javax.security.sasl.AuthenticationException;

import org.apache.hive.service.auth.PasswdAuthenticationProvider;

public final class PasswordFileAuthenticator implements PasswdAuthenticationProvider {
  public static final String USER_PROPERTY = "redline.thrift.user";
  public static final String FILE_PROPERTY = "redline.thrift.passwordFile";

  private static final Set<PosixFilePermission> OTHERS = EnumSet.of(
      PosixFilePermission.GROUP_READ, PosixFilePermission.GROUP_WRITE,
      PosixFilePermission.GROUP_EXECUTE, PosixFilePermission.OTHERS_READ,
      PosixFilePermission.OTHERS_WRITE, PosixFilePermission.OTHERS_EXECUTE);

  /** The accepted user and the password file, set once at start (null: none yet). */
  private static volatile String[] configured;

  /** Fixes the accepted user and password file for the life of the server (once). */
  public static synchronized void configure(String user, String passwordFile) {
    if (configured != null) {
      throw new IllegalStateException("the Thrift Server's login check is already set up");
    }
    configured = new String[] {user, passwordFile};
  }

  @Override
  public void Authenticate(String user, String password) throws AuthenticationException {
    String[] settings = configured;
    String expectedUser = settings == null ? null : settings[0];
    String file = settings == null ? null : settings[1];
    if (expectedUser == null || expectedUser.isEmpty() || file == null || file.isEmpty()) {
      throw new AuthenticationException("the server was started without -D" + USER_PROPERTY
          + " and -D" + FILE_PROPERTY + " (through redline.thrift.ThriftServerMain); no "
          + "login is accepted");
    }
    byte[] expected = readPassword(Path.of(file));
    // Digests have one length whatever the input, so the comparisons below take the same
    // time for every wrong guess; both run, so timing does not tell which one failed.
    boolean userOk = MessageDigest.isEqual(digest(bytes(expectedUser)), digest(bytes(user)));
    boolean passwordOk = MessageDigest.isEqual(digest(expected), digest(bytes(password)));
    if (!(userOk & passwordOk)) {
      throw new AuthenticationException("wrong user name or password");
    }
  }

  private static byte[] readPassword(Path path) throws AuthenticationException {
    try {
      if (!Files.isRegularFile(path, LinkOption.NOFOLLOW_LINKS)
          || Files.getPosixFilePermissions(path).stream().anyMatch(OTHERS::contains)) {
        throw new AuthenticationException("the password file " + path
            + " is not a regular file private to its owner; no login is accepted");
      }
      String value = new String(Files.readAllBytes(path), StandardCharsets.UTF_8).strip();
      if (value.isEmpty()) {
        throw new AuthenticationException("the password file " + path + " is empty");
      }
      return bytes(value);
    } catch (IOException e) {
      throw new AuthenticationException("cannot read the password file " + path, e);
    }
  }

  private static byte[] bytes(String value) {
    return (value == null ? "" : value).getBytes(StandardCharsets.UTF_8);
  }

  private static byte[] digest(byte[] value) {
    try {
      return MessageDigest.getInstance("SHA-256").digest(value);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is missing from this JVM", e);
    }
  }
}
