/*
 * SQL guard of the Spark Thrift Server: statements that reach past the lake's tables are
 * refused before they run.
 *
 * A logged-in client speaks SQL as the server's OS user. Spark lets such SQL read any file
 * (a data source on a path), write any directory (INSERT OVERWRITE DIRECTORY), delete one
 * (DROP DATABASE of a database created at its path), run a shell command (TRANSFORM ...
 * USING), load code (ADD JAR, CREATE FUNCTION ... AS '<class>') or call any static Java
 * method (reflect). redline compiles this file with the password check
 * (ThriftServer.prepare in redline/services/thrift.py) and appends the class to the
 * server's spark.sql.extensions, after Delta's. The server runs with
 * spark.sql.runSQLOnFiles=false; a session where it is true runs nothing.
 *
 * The check rule sees each statement's analyzed plan (commands included) before anything
 * runs, and walks all of it: children, inner plans (a view's or CTAS's query), subqueries
 * and expressions. A refusal is an AnalysisException reading "redline: <what> is not
 * allowed through the Thrift Server". Tables created here must be Delta tables; views and
 * the reading of Delta tables stay open.
 */
package redline.thrift;

import java.lang.reflect.Method;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Deque;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

import org.apache.spark.QueryContext;
import org.apache.spark.sql.AnalysisException;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.SparkSessionExtensions;
import org.apache.spark.sql.SparkSessionExtensionsProvider;
import org.apache.spark.sql.catalyst.catalog.CatalogTable;
import org.apache.spark.sql.catalyst.expressions.CallMethodViaReflection;
import org.apache.spark.sql.catalyst.expressions.Expression;
import org.apache.spark.sql.catalyst.expressions.Literal;
import org.apache.spark.sql.catalyst.expressions.PlanExpression;
import org.apache.spark.sql.catalyst.expressions.RuntimeReplaceable;
import org.apache.spark.sql.catalyst.plans.logical.AddPartitions;
import org.apache.spark.sql.catalyst.plans.logical.CreateFunction;
import org.apache.spark.sql.catalyst.plans.logical.CreateNamespace;
import org.apache.spark.sql.catalyst.plans.logical.CreateTable;
import org.apache.spark.sql.catalyst.plans.logical.CreateTableAsSelect;
import org.apache.spark.sql.catalyst.plans.logical.CreateTableLike;
import org.apache.spark.sql.catalyst.plans.logical.InsertIntoDir;
import org.apache.spark.sql.catalyst.plans.logical.LoadData;
import org.apache.spark.sql.catalyst.plans.logical.LogicalPlan;
import org.apache.spark.sql.catalyst.plans.logical.ReplaceTable;
import org.apache.spark.sql.catalyst.plans.logical.ReplaceTableAsSelect;
import org.apache.spark.sql.catalyst.plans.logical.ScriptTransformation;
import org.apache.spark.sql.catalyst.plans.logical.SetNamespaceLocation;
import org.apache.spark.sql.catalyst.plans.logical.SetNamespaceProperties;
import org.apache.spark.sql.catalyst.plans.logical.SetTableLocation;
import org.apache.spark.sql.catalyst.plans.logical.SetTableSerDeProperties;
import org.apache.spark.sql.execution.command.AddArchivesCommand;
import org.apache.spark.sql.execution.command.AddFilesCommand;
import org.apache.spark.sql.execution.command.AddJarsCommand;
import org.apache.spark.sql.execution.command.AlterDatabasePropertiesCommand;
import org.apache.spark.sql.execution.command.AlterDatabaseSetLocationCommand;
import org.apache.spark.sql.execution.command.AlterTableAddPartitionCommand;
import org.apache.spark.sql.execution.command.AlterTableSerDePropertiesCommand;
import org.apache.spark.sql.execution.command.AlterTableSetLocationCommand;
import org.apache.spark.sql.execution.command.CreateDataSourceTableAsSelectCommand;
import org.apache.spark.sql.execution.command.CreateDataSourceTableCommand;
import org.apache.spark.sql.execution.command.CreateDatabaseCommand;
import org.apache.spark.sql.execution.command.CreateFunctionCommand;
import org.apache.spark.sql.execution.command.CreateTableCommand;
import org.apache.spark.sql.execution.command.CreateTableLikeCommand;
import org.apache.spark.sql.execution.command.InsertIntoDataSourceDirCommand;
import org.apache.spark.sql.execution.command.LoadDataCommand;
import org.apache.spark.sql.execution.command.ResetCommand;
import org.apache.spark.sql.execution.command.SetCommand;
import org.apache.spark.sql.catalyst.util.ArrayData;
import org.apache.spark.sql.catalyst.util.MapData;
import org.apache.spark.sql.execution.datasources.CreateTempViewUsing;
import org.apache.spark.sql.hive.execution.CreateHiveTableAsSelectCommand;
import org.apache.spark.sql.hive.execution.InsertIntoHiveDirCommand;
import org.apache.spark.sql.types.BinaryType;
import org.apache.spark.sql.types.MapType;
import org.apache.spark.sql.types.StringType;

import scala.Option;
import scala.Tuple2;
import scala.jdk.javaapi.CollectionConverters;
import scala.runtime.AbstractFunction1;
import scala.runtime.BoxedUnit;

public final class SqlGuard extends AbstractFunction1<SparkSessionExtensions, BoxedUnit>
    implements SparkSessionExtensionsProvider {

  /** Spark's error condition of a refusal (see ``refused``); SQLSTATE P0001. */
  static final String CONDITION = "USER_RAISED_EXCEPTION";
  /** The one data source a table or a temporary view may be created with. */
  public static final String ALLOWED_PROVIDER = "delta";
  /** Settings a client may read but not change (compared without case). */
  static final Set<String> PROTECTED_KEYS = Set.of(
      "spark.sql.runsqlonfiles", "spark.sql.extensions",
      // Else '${env:HOME}' or '${system:user.name}' in any statement reads the server's
      // environment and properties (what the refused reflect would give).
      "spark.sql.variable.substitute",
      // The single-pass analyzer is experimental; the guard is tested on the usual one.
      "spark.sql.analyzer.singlepassresolver.enabled");
  /** Prefixes of such settings: a new catalog plugin (JDBC, ...) reaches past the lake. */
  static final List<String> PROTECTED_PREFIXES = List.of("spark.sql.catalog.", "redline.");
  /**
   * Words of an option key that names a place to read (compared without case): XML's
   * rowValidationXSDPath, Avro's avroSchemaUrl, and any such option of the functions
   * that take options (from_xml, schema_of_xml, from_json, from_csv, from_avro, ...).
   */
  static final List<String> LOCATION_WORDS = List.of("path", "url", "uri", "file",
      "location");
  /** Delta commands refused by class name (Delta is on the class path only at run time). */
  static final Map<String, String> REFUSED_DELTA_COMMANDS = Map.of(
      "org.apache.spark.sql.delta.commands.ConvertToDeltaCommand",
      "CONVERT TO DELTA (it turns any Parquet folder into a readable table)");

  @Override
  public BoxedUnit apply(SparkSessionExtensions extensions) {
    extensions.injectCheckRule(new AbstractFunction1<SparkSession,
        scala.Function1<LogicalPlan, BoxedUnit>>() {
      @Override
      public scala.Function1<LogicalPlan, BoxedUnit> apply(SparkSession session) {
        return new AbstractFunction1<LogicalPlan, BoxedUnit>() {
          @Override
          public BoxedUnit apply(LogicalPlan plan) {
            check(session, plan);
            return BoxedUnit.UNIT;
          }
        };
      }
    });
    return BoxedUnit.UNIT;
  }

  /** Throws an AnalysisException if ``plan`` (or ``session``'s settings) is refused. */
  static void check(SparkSession session, LogicalPlan plan) {
    checkSession(session);
    Set<Object> seen = Collections.newSetFromMap(new IdentityHashMap<>());
    Deque<Object> todo = new ArrayDeque<>();
    todo.push(plan);
    while (!todo.isEmpty()) {
      Object node = todo.pop();
      if (!seen.add(node)) {
        continue;
      }
      if (node instanceof LogicalPlan p) {
        checkPlan(p);
        todo.addAll(list(p.expressions()));
        todo.addAll(list(p.children()));
        todo.addAll(list(p.innerChildren()));
      } else if (node instanceof Expression e) {
        if (e instanceof CallMethodViaReflection) {
          throw refused("calling Java methods (reflect, java_method, try_reflect)");
        }
        checkOptions(e);
        if (e instanceof RuntimeReplaceable r) {
          todo.push(r.replacement());
        }
        if (e instanceof PlanExpression<?> s) {
          todo.push(s.plan());
        }
        todo.addAll(list(e.children()));
      }
    }
  }

  /**
   * Settings can also arrive without a SET statement (a HiveServer2 client may send them
   * when it opens its session): whatever the way, a session with them changed runs nothing.
   */
  private static void checkSession(SparkSession session) {
    if (session.sessionState().conf().runSQLonFile()) {
      throw refused("a session with spark.sql.runSQLOnFiles=true");
    }
    for (Map.Entry<String, String> entry
        : CollectionConverters.asJava(session.sessionState().conf().getAllConfs()).entrySet()) {
      String key = entry.getKey();
      if (isProtected(key)) {
        Option<String> atStart = session.sparkContext().conf().getOption(key);
        if (atStart.isEmpty() || !atStart.get().equals(entry.getValue())) {
          throw refused("a session that changes " + key);
        }
      }
    }
  }

  private static void checkPlan(LogicalPlan p) {
    if (p instanceof ScriptTransformation) {
      throw refused("running a command (TRANSFORM/MAP/REDUCE ... USING)");
    } else if (p instanceof SetCommand set) {
      Option<Tuple2<String, Option<String>>> kv = set.kv();
      if (kv.isDefined() && kv.get()._2().isDefined() && isProtected(kv.get()._1())) {
        throw refused("changing " + kv.get()._1().trim() + " (SET)");
      }
    } else if (p instanceof ResetCommand reset) {
      if (reset.config().isDefined() && isProtected(reset.config().get())) {
        throw refused("changing " + reset.config().get().trim() + " (RESET)");
      }
    } else if (p instanceof CreateTempViewUsing view) {
      requireDelta(Option.apply(view.provider()), "a temporary view");
    } else if (p instanceof CreateTable c) {
      requireDelta(c.tableSpec().provider(), "a table");
    } else if (p instanceof CreateTableAsSelect c) {
      requireDelta(c.tableSpec().provider(), "a table");
    } else if (p instanceof ReplaceTable c) {
      requireDelta(c.tableSpec().provider(), "a table");
    } else if (p instanceof ReplaceTableAsSelect c) {
      requireDelta(c.tableSpec().provider(), "a table");
    } else if (p instanceof CreateTableLike c) {
      requireDelta(c.provider(), "a table (CREATE TABLE ... LIKE)");
    } else if (p instanceof CreateTableLikeCommand c) {
      requireDelta(c.provider(), "a table (CREATE TABLE ... LIKE)");
    } else if (p instanceof org.apache.spark.sql.execution.datasources.CreateTable c) {
      requireDelta(c.tableDesc(), "a table");
    } else if (p instanceof CreateDataSourceTableCommand c) {
      requireDelta(c.table(), "a table");
    } else if (p instanceof CreateDataSourceTableAsSelectCommand c) {
      requireDelta(c.table(), "a table");
    } else if (p instanceof CreateTableCommand c) {
      requireDelta(c.table(), "a table");
    } else if (p instanceof CreateHiveTableAsSelectCommand c) {
      requireDelta(c.tableDesc(), "a table");
    } else if (p instanceof InsertIntoDir || p instanceof InsertIntoDataSourceDirCommand
        || p instanceof InsertIntoHiveDirCommand) {
      throw refused("writing to a directory (INSERT OVERWRITE [LOCAL] DIRECTORY)");
    } else if (p instanceof AddJarsCommand) {
      throw refused("ADD JAR");
    } else if (p instanceof AddFilesCommand) {
      throw refused("ADD FILE");
    } else if (p instanceof AddArchivesCommand) {
      throw refused("ADD ARCHIVE");
    } else if (p instanceof LoadData || p instanceof LoadDataCommand) {
      throw refused("LOAD DATA");
    } else if (p instanceof CreateFunction || p instanceof CreateFunctionCommand) {
      throw refused("creating a function from a class (CREATE FUNCTION ... AS '<class>')");
    } else if (p instanceof CreateNamespace c && hasLocation(c.properties())
        || p instanceof CreateDatabaseCommand d && d.path().isDefined()
        || p instanceof SetNamespaceLocation || p instanceof AlterDatabaseSetLocationCommand
        || p instanceof SetNamespaceProperties n && hasLocation(n.properties())
        || p instanceof AlterDatabasePropertiesCommand a && hasLocation(a.props())) {
      // DROP DATABASE deletes the database's folder, with everything in it.
      throw refused("placing a database in a folder (CREATE/ALTER DATABASE ... LOCATION)");
    } else if (p instanceof SetTableLocation || p instanceof AlterTableSetLocationCommand) {
      throw refused("moving a table (ALTER TABLE ... SET LOCATION)");
    } else if (p instanceof AddPartitions || p instanceof AlterTableAddPartitionCommand) {
      throw refused("ALTER TABLE ... ADD PARTITION");
    } else if (p instanceof SetTableSerDeProperties
        || p instanceof AlterTableSerDePropertiesCommand) {
      throw refused("ALTER TABLE ... SET SERDE/SERDEPROPERTIES");
    } else {
      String what = REFUSED_DELTA_COMMANDS.get(p.getClass().getName());
      if (what != null) {
        throw refused(what);
      }
    }
  }

  /**
   * Refuses an expression whose options name a file or URL, before anything opens it:
   * from_xml(..., map('rowValidationXSDPath', PATH)) opens any local path or fetches any
   * URL. Expressions are found by their ``options()`` (a map, or a map expression), so a
   * function Spark adds later is covered too; protobuf functions also refuse a descriptor
   * given as a file path (bytes stay open).
   */
  private static void checkOptions(Expression e) {
    Object options = call(e, "options");
    List<String> keys = new ArrayList<>();
    if (options instanceof scala.collection.Map<?, ?> map) {
      CollectionConverters.asJava(map.keys()).forEach(k -> keys.add(String.valueOf(k)));
    } else if (options instanceof Expression x && x.foldable()
        && x.dataType() instanceof MapType type && type.keyType() instanceof StringType) {
      Object value = x.eval(null);
      if (value instanceof MapData data) {
        ArrayData names = data.keyArray();
        for (int i = 0; i < names.numElements(); i++) {
          keys.add(names.isNullAt(i) ? "" : names.getUTF8String(i).toString());
        }
      }
    }
    for (String key : keys) {
      String k = key.toLowerCase(Locale.ROOT);
      if (LOCATION_WORDS.stream().anyMatch(k::contains)) {
        throw refused("the option " + key.trim() + " of " + e.prettyName()
            + " (an option naming a file or URL)");
      }
    }
    if (call(e, "descFilePath") instanceof Expression d
        && !(d instanceof Literal l && l.value() == null)
        && !(d.dataType() instanceof BinaryType)) {
      throw refused("a descriptor file path in " + e.prettyName()
          + " (pass the descriptor's bytes)");
    }
  }

  /** ``target.name()`` if it has such a public method without parameters, else null. */
  private static Object call(Object target, String name) {
    Method method;
    try {
      method = target.getClass().getMethod(name);
    } catch (NoSuchMethodException e) {
      return null;
    }
    try {
      return method.invoke(target);
    } catch (ReflectiveOperationException e) {
      throw refused("an expression the guard cannot inspect (" + target.getClass().getName()
          + "." + name + ": " + e + ")");
    }
  }

  static boolean isProtected(String key) {
    String k = key.trim().toLowerCase(Locale.ROOT);
    // SET hivevar:<key>=<value> sets <key> itself.
    for (String variable : List.of("hivevar:", "hiveconf:")) {
      if (k.startsWith(variable)) {
        k = k.substring(variable.length()).trim();
      }
    }
    return PROTECTED_KEYS.contains(k) || PROTECTED_PREFIXES.stream().anyMatch(k::startsWith);
  }

  private static boolean hasLocation(scala.collection.immutable.Map<String, String> props) {
    return CollectionConverters.asJava(props).keySet().stream()
        .anyMatch(key -> key.trim().equalsIgnoreCase("location"));
  }

  private static void requireDelta(CatalogTable table, String what) {
    requireDelta(table.provider(), what);
  }

  private static void requireDelta(Option<String> provider, String what) {
    if (provider.isEmpty() || !provider.get().equalsIgnoreCase(ALLOWED_PROVIDER)) {
      String name = provider.isEmpty() ? "no" : provider.get();
      throw refused("creating " + what + " with " + name + " data source (only USING "
          + ALLOWED_PROVIDER + ")");
    }
  }

  private static <T> List<T> list(scala.collection.Seq<T> seq) {
    return CollectionConverters.asJava(seq);
  }

  /**
   * Throws the AnalysisException refusing ``what`` (the declared return only lets callers
   * write ``throw refused(...)``). To Java, AnalysisException is a checked exception that
   * Scala's Function1.apply cannot declare; Spark catches it as the analyzer's own errors.
   */
  static RuntimeException refused(String what) {
    String message = "redline: " + what + " is not allowed through the Thrift Server";
    // SQL scripting (BEGIN ... END) fails with a NullPointerException on an exception
    // without a condition and its SQLSTATE, and the analyzer re-wraps check rules' errors
    // keeping the condition only: the condition must be one of Spark's. This is the one
    // raise_error() uses, whose whole text is the message.
    throw SqlGuard.<RuntimeException>uncheckedThrow(new AnalysisException(
        message, Option.empty(), Option.empty(), Option.empty(), Option.apply(CONDITION),
        new scala.collection.immutable.Map.Map1<>("errorMessage", message),
        new QueryContext[0], Option.empty(), Option.empty()));
  }

  @SuppressWarnings("unchecked")
  private static <E extends Throwable> E uncheckedThrow(Throwable error) throws E {
    throw (E) error;
  }
}
