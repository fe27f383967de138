#!/bin/sh
# ----------------------------------------------------------------------------
#  Stand-in for the WSO2 API Manager 1.9.0 start script (apim-deploy lab).
#
#  Same interface, checks and quirks as the product script:
#    JAVA_HOME  $JAVA_HOME/bin/java must be executable, else "Error: JAVA_HOME is
#               not defined correctly." and exit 1 (with JAVA_HOME unset that is
#               "CARBON cannot execute java"); then JAVA_HOME must be set, else
#               "You must set the JAVA_HOME variable ..." and exit 1 (reached only
#               when JAVACMD names an executable). Both run before any command,
#               so `start` fails in the caller's terminal, not in the background.
#    start      daemonises (nohup, output to /dev/null) and returns at once;
#               any other argument given with it is dropped
#    stop       sends SIGTERM to the pid in wso2carbon.pid and returns at once
#    restart    SIGTERM, waits until that pid is gone, then starts like "start"
#    version    prints bin/version.txt and bin/wso2carbon-version.txt
#    anything else (e.g. -DportOffset=1, status) runs the server in the
#               foreground and hands it all arguments
#  Every command word is also accepted as -word and --word.
#
#  The foreground run warns unless `java -version` says 1.6 or 1.7, then starts
#  the server through $JAVA_HOME/bin/java with 1.9.0's JVM options, so a JDK
#  that refuses them (9 and later) stops the server before it logs anything.
#  With the apim-deploy stand-in JDK, that java runs bin/standin-carbon.py
#  (python3, standard library only), which writes wso2carbon.pid and
#  repository/logs/wso2carbon.log like Carbon.
# ----------------------------------------------------------------------------

# resolve links - $0 may be a softlink
PRG="$0"

while [ -h "$PRG" ]; do
  ls=`ls -ld "$PRG"`
  link=`expr "$ls" : '.*-> \(.*\)$'`
  if expr "$link" : '.*/.*' > /dev/null; then
    PRG="$link"
  else
    PRG=`dirname "$PRG"`/"$link"
  fi
done

PRGDIR=`dirname "$PRG"`

# Only set CARBON_HOME if not already set
[ -z "$CARBON_HOME" ] && CARBON_HOME=`cd "$PRGDIR/.." ; pwd`

# ----- The JVM: checked before anything else, as the product script does -------
if [ -z "$JAVACMD" ]; then
  if [ -n "$JAVA_HOME" ]; then
    JAVACMD="$JAVA_HOME/bin/java"
  else
    # Relative: found only if the working directory has an executable `java`.
    JAVACMD=java
  fi
fi

if [ ! -x "$JAVACMD" ]; then
  echo "Error: JAVA_HOME is not defined correctly."
  echo " CARBON cannot execute $JAVACMD"
  exit 1
fi

if [ -z "$JAVA_HOME" ]; then
  echo "You must set the JAVA_HOME variable before running CARBON."
  exit 1
fi

# ----- Which command? ----------------------------------------------------------
# Every word is looked at; the last command word wins. After "debug" the next word
# is the debug port and later words are no commands any more.
CMD=""
PORT=""
for word in "$@"
do
    if [ "$CMD" = "--debug" ]; then
        [ -z "$PORT" ] && PORT=$word
        continue
    fi
    case "$word" in
        debug|-debug|--debug)       CMD="--debug" ;;
        start|-start|--start)       CMD="start" ;;
        stop|-stop|--stop)          CMD="stop" ;;
        restart|-restart|--restart) CMD="restart" ;;
        version|-version|--version) CMD="version" ;;
        test|-test|--test)          CMD="test" ;;
    esac
done

# The pid Carbon wrote (100 bytes: digits, newline, NUL padding).
carbon_pid() {
    tr -d '\000' < "$CARBON_HOME/wso2carbon.pid"
}

if [ "$CMD" = "--debug" ]; then
  if [ "$PORT" = "" ]; then
    echo "debug needs a port: wso2server.sh --debug <port>"
    exit 1
  fi
  # As in the product, the debug agent's options replace JAVA_OPTS (the stand-in JVM
  # accepts and ignores them, and does not wait for a debugger).
  [ -n "$JAVA_OPTS" ] && echo "JAVA_OPTS is ignored with --debug"
  JAVA_OPTS="-Xdebug -Xnoagent -Djava.compiler=NONE -Xrunjdwp:transport=dt_socket,server=y,suspend=y,address=$PORT"
elif [ "$CMD" = "start" ]; then
  if [ -e "$CARBON_HOME/wso2carbon.pid" ] && ps -p "`carbon_pid`" > /dev/null 2>&1; then
    echo "Process is already running"
    exit 0
  fi
  export CARBON_HOME=$CARBON_HOME
  nohup bash "$CARBON_HOME/bin/wso2server.sh" > /dev/null 2>&1 &
  exit 0
elif [ "$CMD" = "stop" ]; then
  export CARBON_HOME=$CARBON_HOME
  kill -term `carbon_pid`
  exit 0
elif [ "$CMD" = "restart" ]; then
  export CARBON_HOME=$CARBON_HOME
  old_pid=`carbon_pid`
  kill -term $old_pid
  # wait until the old server is gone, then start like "start" does
  while ps -p "$old_pid" > /dev/null 2>&1
  do
    sleep 1
  done

  nohup bash "$CARBON_HOME/bin/wso2server.sh" > /dev/null 2>&1 &
  exit 0
elif [ "$CMD" = "test" ]; then
    echo "Only the Java server can run the test harness"
    exit 1
elif [ "$CMD" = "version" ]; then
  cat "$CARBON_HOME/bin/version.txt"
  cat "$CARBON_HOME/bin/wso2carbon-version.txt"
  exit 0
fi

# ----- Which JDK? ------------------------------------------------------------
# 1.9.0 only knows 1.6 and 1.7: anything else gets an error line, and it goes on.
# (The pattern is the product's: "1", any character, then 6, 7 or "|".)
if ! "$JAVA_HOME/bin/java" -version 2>&1 | grep "1.[6|7]" > /dev/null; then
  echo " Starting WSO2 Carbon (in unsupported JDK)"
  echo " [ERROR] CARBON is supported only on JDK 1.6 and 1.7"
fi

CARBON_XBOOTCLASSPATH=""
for f in "$CARBON_HOME"/lib/xboot/*.jar
do
  [ -e "$f" ] && CARBON_XBOOTCLASSPATH="$CARBON_XBOOTCLASSPATH":$f
done

JAVA_ENDORSED_DIRS="$CARBON_HOME/lib/endorsed":"$JAVA_HOME/jre/lib/endorsed":"$JAVA_HOME/lib/endorsed"

CARBON_CLASSPATH=""
[ -e "$JAVA_HOME/lib/tools.jar" ] && CARBON_CLASSPATH="$JAVA_HOME/lib/tools.jar"
for f in "$CARBON_HOME"/bin/*.jar "$CARBON_HOME"/lib/commons-lang*.jar
do
  [ -e "$f" ] && CARBON_CLASSPATH="$CARBON_CLASSPATH":$f
done

echo "JAVA_HOME environment variable is set to $JAVA_HOME"
echo "CARBON_HOME environment variable is set to $CARBON_HOME"

cd "$CARBON_HOME"

# Exit status 121 asks for a restart, as Carbon's console restart does.
START_EXIT_STATUS=121
status=$START_EXIT_STATUS

# The JVM options of 1.9.0 (heap and PermGen sizes, the endorsed-standards dirs, the
# -D properties Carbon reads, JAVA_OPTS unquoted so it splits into words), then the
# arguments unquoted ($*), as the product passes them. $JAVACMD is unquoted too: a
# JAVA_HOME with a space passes the -x check above and then fails here, as in 1.9.0.
while [ "$status" = "$START_EXIT_STATUS" ]
do
    $JAVACMD \
    -Xbootclasspath/a:"$CARBON_XBOOTCLASSPATH" \
    -Xms256m -Xmx1024m -XX:MaxPermSize=256m \
    -XX:+HeapDumpOnOutOfMemoryError \
    -XX:HeapDumpPath="$CARBON_HOME/repository/logs/heap-dump.hprof" \
    $JAVA_OPTS \
    -Dcom.sun.management.jmxremote \
    -classpath "$CARBON_CLASSPATH" \
    -Djava.endorsed.dirs="$JAVA_ENDORSED_DIRS" \
    -Djava.io.tmpdir="$CARBON_HOME/tmp" \
    -Dcatalina.base="$CARBON_HOME/lib/tomcat" \
    -Dwso2.server.standalone=true \
    -Dcarbon.registry.root=/ \
    -Djava.command="$JAVACMD" \
    -Dcarbon.home="$CARBON_HOME" \
    -Dcarbon.config.dir.path="$CARBON_HOME/repository/conf" \
    -Dcomponents.repo="$CARBON_HOME/repository/components/plugins" \
    -Dconf.location="$CARBON_HOME/repository/conf" \
    -Djava.security.egd=file:/dev/./urandom \
    -Dfile.encoding=UTF8 \
    -DapplyPatches \
    org.wso2.carbon.bootstrap.Bootstrap $*
    status=$?
done
exit $status
