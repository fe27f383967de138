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

# ----- Process the input command ---------------------------------------------
for c in "$@"
do
    if [ "$c" = "--debug" ] || [ "$c" = "-debug" ] || [ "$c" = "debug" ]; then
          CMD="--debug"
          continue
    elif [ "$CMD" = "--debug" ]; then
          if [ -z "$PORT" ]; then
                PORT=$c
          fi
    elif [ "$c" = "--stop" ] || [ "$c" = "-stop" ] || [ "$c" = "stop" ]; then
          CMD="stop"
    elif [ "$c" = "--start" ] || [ "$c" = "-start" ] || [ "$c" = "start" ]; then
          CMD="start"
    elif [ "$c" = "--version" ] || [ "$c" = "-version" ] || [ "$c" = "version" ]; then
          CMD="version"
    elif [ "$c" = "--restart" ] || [ "$c" = "-restart" ] || [ "$c" = "restart" ]; then
          CMD="restart"
    elif [ "$c" = "--test" ] || [ "$c" = "-test" ] || [ "$c" = "test" ]; then
          CMD="test"
    fi
done

if [ "$CMD" = "--debug" ]; then
  if [ "$PORT" = "" ]; then
    echo " Please specify the debug port after the --debug option"
    exit 1
  fi
  echo "Please start the remote debugging client to continue..."
elif [ "$CMD" = "start" ]; then
  if [ -e "$CARBON_HOME/wso2carbon.pid" ]; then
    if  ps -p `tr -d '\000' < "$CARBON_HOME/wso2carbon.pid"` > /dev/null 2>&1 ; then
      echo "Process is already running"
      exit 0
    fi
  fi
  export CARBON_HOME=$CARBON_HOME
  nohup bash "$CARBON_HOME/bin/wso2server.sh" > /dev/null 2>&1 &
  exit 0
elif [ "$CMD" = "stop" ]; then
  export CARBON_HOME=$CARBON_HOME
  kill -term `tr -d '\000' < "$CARBON_HOME/wso2carbon.pid"`
  exit 0
elif [ "$CMD" = "restart" ]; then
  export CARBON_HOME=$CARBON_HOME
  pid=`tr -d '\000' < "$CARBON_HOME/wso2carbon.pid"`
  kill -term $pid
  process_status=0
  while [ "$process_status" -eq "0" ]
  do
        sleep 1;
        ps -p $pid > /dev/null 2>&1
        process_status=$?
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
