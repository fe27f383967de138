#!/bin/sh
# ----------------------------------------------------------------------------
#  Stand-in `java` of the apim-deploy lab's stand-in JDK @JDK_DIR@. Not a JVM.
#
#  It is as strict as the JVM it stands for, where a deployment tool can see it:
#    -version / -fullversion  print what that JVM prints (on stderr) and exit 0
#    on a 9+ JDK              -XX:MaxPermSize / -XX:PermSize and
#                             -Djava.endorsed.dirs are fatal, with the JVM's
#                             messages and exit status 1
#    on JDK 8                 -XX:MaxPermSize is ignored with the JVM's warning
#    main class org.wso2.carbon.bootstrap.Bootstrap (1.7 and 1.8 only)
#                             execs the stand-in server,
#                             <carbon.home>/bin/standin-carbon.py, with every
#                             argument it was given: the server process's
#                             command line keeps -Dcarbon.home and the rest
#    any other main class     "Could not find or load main class", exit 1
#  STANDIN_PYTHON selects the interpreter (default /usr/bin/python3).
# ----------------------------------------------------------------------------

FEATURE=@FEATURE@
VERSION='@VERSION@'
FULL_VERSION='@FULL_VERSION@'
VM_DESCRIPTION='@VM_DESCRIPTION@'
VENDOR_WORD='@VENDOR_WORD@'
BOOTSTRAP=org.wso2.carbon.bootstrap.Bootstrap

# The JDK's own directory, also when this file is reached through a symlink
# (/usr/bin/java -> /etc/alternatives/java -> ...).
self="$0"
while [ -h "$self" ]; do
  link=`ls -ld "$self"`
  link=`expr "$link" : '.*-> \(.*\)$'`
  case "$link" in
    /*) self="$link" ;;
    *)  self=`dirname "$self"`/"$link" ;;
  esac
done
bin_dir=`dirname "$self"`
jdk_home=`cd "$bin_dir/.." && pwd`

print_version() {
  cat >&2 <<'EOF'
@VERSION_TEXT@
EOF
}

# What the launcher prints when the VM refuses its options.
vm_creation_failed() {
  echo "Error: Could not create the Java Virtual Machine." >&2
  echo "Error: A fatal exception has occurred. Program will exit." >&2
  exit 1
}

no_main_class() {
  echo "Error: Could not find or load main class $1" >&2
  exit 1
}

# Launcher options come before the main class; what follows it belongs to the program.
main=""
carbon_home=""
perm_option=""
endorsed_option=""
want_version=""
want_full_version=""
takes_value=""
for arg in "$@"; do
  if [ -n "$takes_value" ]; then
    takes_value=""
    continue
  fi
  case "$arg" in
    -cp|-classpath|--class-path|--module-path|-p) takes_value=1 ;;
    -version) want_version=1 ;;
    -fullversion) want_full_version=1 ;;
    -XX:MaxPermSize=*|-XX:PermSize=*) perm_option="${arg#-XX:}" ;;
    -Djava.endorsed.dirs=*) endorsed_option="$arg" ;;
    -Dcarbon.home=*) carbon_home="${arg#-Dcarbon.home=}" ;;
    -*) ;;
    *) main="$arg"; break ;;
  esac
done

if [ "$FEATURE" -ge 9 ]; then
  # Java 9 removed the permanent generation and the endorsed-standards override:
  # the VM does not start with either option (1.9.0's wso2server.sh passes both).
  if [ -n "$perm_option" ]; then
    echo "Unrecognized VM option '$perm_option'" >&2
    vm_creation_failed
  fi
  if [ -n "$endorsed_option" ]; then
    echo "$endorsed_option is not supported. Endorsed standards and standalone APIs" >&2
    echo "in modular form will be supported via the concept of upgradeable modules." >&2
    vm_creation_failed
  fi
elif [ "$FEATURE" -eq 8 ] && [ -n "$perm_option" ]; then
  echo "$VM_DESCRIPTION warning: ignoring option $perm_option; support was removed in 8.0" >&2
fi

if [ -n "$want_version" ]; then
  print_version
  exit 0
fi
if [ -n "$want_full_version" ]; then
  echo "$VENDOR_WORD full version \"$FULL_VERSION\"" >&2
  exit 0
fi
if [ -z "$main" ]; then
  if [ "$FEATURE" -ge 9 ]; then
    echo "Usage: java [options] <mainclass> [args...]" >&2
  else
    echo "Usage: java [-options] class [args...]" >&2
  fi
  exit 1
fi
if [ "$main" != "$BOOTSTRAP" ]; then
  no_main_class "$main"
fi
if [ "$FEATURE" -ge 9 ]; then
  # Only reachable with an edited start script. Carbon 4.2 does not run on a modular
  # JDK, so the stand-in does not pretend it does.
  echo "stand-in JDK $VERSION: WSO2 Carbon 4.2 needs Java 1.6, 1.7 or 1.8" >&2
  no_main_class "$main"
fi
if [ -z "$carbon_home" ] || [ ! -f "$carbon_home/bin/standin-carbon.py" ]; then
  no_main_class "$main"
fi

# What Carbon would read from the JVM's system properties (java.home is the JRE).
STANDIN_JAVA_HOME="$jdk_home/jre"
STANDIN_JAVA_VERSION="$VERSION"
STANDIN_JAVA_VM="$VM_DESCRIPTION"
export STANDIN_JAVA_HOME STANDIN_JAVA_VERSION STANDIN_JAVA_VM

python="${STANDIN_PYTHON:-/usr/bin/python3}"
if [ ! -x "$python" ]; then
  python=python3
fi
exec "$python" "$carbon_home/bin/standin-carbon.py" "$@"
