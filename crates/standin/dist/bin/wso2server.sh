#!/bin/sh
# ----------------------------------------------------------------------------
#  Stand-in for the WSO2 API Manager 1.9.0 start script (apim-deploy lab).
#
#  Same interface and quirks as the product script:
#    start    daemonises (nohup, output to /dev/null) and returns at once;
#             any other argument given with it is dropped
#    stop     sends SIGTERM to the pid in wso2carbon.pid and returns at once
#    restart  SIGTERM, waits until that pid is gone, then starts like "start"
#    version  prints bin/version.txt and bin/wso2carbon-version.txt
#    anything else (e.g. -DportOffset=1, status) runs the server in the
#             foreground and hands it all arguments
#  Every command word is also accepted as -word and --word.
#
#  The server is bin/standin-carbon.py (python3, standard library only); it
#  writes wso2carbon.pid and repository/logs/wso2carbon.log like Carbon.
#  JAVA_HOME is not needed; it is only echoed into the log when set.
#  STANDIN_PYTHON selects the interpreter (default /usr/bin/python3).
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

if [ -z "$STANDIN_PYTHON" ]; then
  if [ -x /usr/bin/python3 ]; then
    STANDIN_PYTHON=/usr/bin/python3
  else
    STANDIN_PYTHON=python3
  fi
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
  echo "The stand-in has no JVM to debug; running it in the foreground."
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

echo "JAVA_HOME environment variable is set to $JAVA_HOME"
echo "CARBON_HOME environment variable is set to $CARBON_HOME"

cd "$CARBON_HOME"

# Exit status 121 asks for a restart, as Carbon's console restart does.
START_EXIT_STATUS=121
status=$START_EXIT_STATUS

while [ "$status" = "$START_EXIT_STATUS" ]
do
    "$STANDIN_PYTHON" "$CARBON_HOME/bin/standin-carbon.py" "$@"
    status=$?
done
exit $status
