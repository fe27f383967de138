#!/usr/bin/env python3
"""Stand-in for the Carbon 4.2 server of WSO2 API Manager 1.9.0 (apim-deploy lab).

Run by the stand-in JDK's bin/java (which bin/wso2server.sh runs exactly as the real
script runs the JVM) with the JVM's whole command line: JVM options, the main class
org.wso2.carbon.bootstrap.Bootstrap, then Carbon's own arguments. It behaves like Carbon
where a deployment tool can observe it, and nowhere else:

* writes CARBON_HOME/wso2carbon.pid (pid, newline, NUL padding to 100 bytes) and never
  removes it;
* appends Carbon-format lines to repository/logs/wso2carbon.log;
* reads the node's own carbon.xml (Ports/Offset, or -DportOffset), catalina-server.xml,
  axis2.xml (pass-through ports, clustering), api-manager.xml, master-datasources.xml,
  user-mgt.xml and registry.xml;
* reserves every port first: servlet 9763/9443 + offset, pass-through 8280/8243 + offset,
  the Thrift port (no offset) when EnableThriftServer is true and Hazelcast's
  localMemberPort (no offset) when clustering is enabled; a taken port is an ERROR
  (java.net.BindException) and, as in Carbon, the process stays up without starting;
* checks each datasource the node uses (the API Manager one, the user store one, every
  registry dbConfig): the JNDI name must be defined, H2 URLs are accepted as they are,
  MySQL URLs are resolved through the hosts file, logged into with the configured user
  and password (mariadb/mysql client, credentials in a 0600 temporary defaults file) and
  probed for the tables the product needs; the JDBC driver jar must be in
  repository/components/lib;
* a node that is not its own Key Manager checks that the Key Manager and Gateway admin
  URLs in api-manager.xml accept TCP connections;
* after any failure it logs ERROR lines, never logs the started line and idles until
  SIGTERM, with its servlet ports closed (like a Carbon that hung during start-up);
* otherwise it opens the ports (TLS on the https ones when openssl can make a
  certificate), waits until start.delay.secs (bin/standin.properties, or env
  STANDIN_START_DELAY) have passed since the process started and logs "WSO2 Carbon started in N sec" and the Mgt Console URL;
* SIGTERM: the graceful shutdown lines over about a second, then exit 0.

Stand-in only switches (documented in docs/standin.md): the file
repository/conf/standin-refuse-start or env STANDIN_REFUSE_START=1 makes it refuse to
become healthy; the file repository/conf/standin-exit-early or env
STANDIN_EXIT_EARLY=1 makes it log an ERROR and exit with status 1 before it is healthy
(a JVM that dies during start-up); STANDIN_HOSTS_FILE, STANDIN_LOCAL_IP and STANDIN_BIND_ADDRESS replace
/etc/hosts, the detected local IP and the 0.0.0.0 bind address.

Standard library only: python3 is the one runtime every lab host shares.
"""

import time

# Taken before the other imports: start.delay.secs is the time from here to the started
# line, as Carbon's "started in N sec" counts from the JVM's start.
PROCESS_START = time.time()

import base64
import datetime
import hashlib
import ipaddress
import os
import platform
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import urllib.parse
import xml.etree.ElementTree as ET
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

def carbon_home_property(argv):
    """-Dcarbon.home from the JVM's command line: what Carbon itself goes by."""
    for word in argv:
        if word.startswith("-Dcarbon.home="):
            return word[len("-Dcarbon.home="):]
    return None


CARBON_HOME = (carbon_home_property(sys.argv[1:]) or os.environ.get("CARBON_HOME")
               or os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PRODUCT = "WSO2 API Manager"
VERSION = "1.9.0"
REFUSE_FILE = "repository/conf/standin-refuse-start"
EXIT_EARLY_FILE = "repository/conf/standin-exit-early"
DEFAULT_START_DELAY = 2.0

# Classes the real server logs from, so log scrapers see familiar names.
C_CORE = "org.wso2.carbon.core.internal.CarbonCoreActivator"
C_FINALIZER = "org.wso2.carbon.core.internal.StartupFinalizerServiceComponent"
C_SERVER_MGR = "org.wso2.carbon.core.init.CarbonServerManager"
C_SERVER_MGMT = "org.wso2.carbon.core.ServerManagement"
C_UI = "org.wso2.carbon.ui.internal.CarbonUIServiceComponent"
C_JMX = "org.wso2.carbon.core.init.JMXServerManager"
C_POOL = "org.apache.tomcat.jdbc.pool.ConnectionPool"
C_NDS = "org.wso2.carbon.ndatasource.core.DataSourceRepository"
C_REGISTRY = "org.wso2.carbon.registry.core.jdbc.EmbeddedRegistryService"
C_REGISTRY_MODE = "org.wso2.carbon.registry.core.internal.RegistryCoreServiceComponent"
C_USER = "org.wso2.carbon.user.core.internal.Activator"
C_USER_OK = "org.wso2.carbon.user.core.internal.UserStoreMgtDSComponent"
C_APIM_DB = "org.wso2.carbon.apimgt.impl.utils.APIMgtDBUtil"
C_APIM = "org.wso2.carbon.apimgt.impl.internal.APIManagerComponent"
C_CLUSTER_OFF = "org.apache.axis2.deployment.ClusterBuilder"
C_HAZELCAST = "org.wso2.carbon.core.clustering.hazelcast.HazelcastClusteringAgent"
C_PT_HTTP = "org.apache.synapse.transport.passthru.PassThroughHttpListener"
C_PT_HTTPS = "org.apache.synapse.transport.passthru.PassThroughHttpSSLListener"
C_TOMCAT = "org.apache.catalina.core.StandardService"
C_NIO = "org.apache.tomcat.util.net.NioSelectorPool"
C_THRIFT = "org.wso2.carbon.apimgt.keymgt.internal.APIKeyMgtServiceComponent"
C_IDP = "org.wso2.carbon.idp.mgt.internal.IdPManagementServiceComponent"
C_STANDIN = "org.wso2.carbon.standin.StandInServer"
C_REG_CONFIG = "org.wso2.carbon.registry.core.config.RegistryConfigurationProcessor"
C_USER_STORE = "org.wso2.carbon.user.core.common.AbstractUserStoreManager"
C_AUTH_ADMIN = "org.wso2.carbon.core.services.util.CarbonAuthenticationUtil"
SUPER_TENANT_ID = -1234


class StartupFailed(Exception):
    """A check failed; its ERROR lines are already logged."""


class FatalStartup(Exception):
    """The process exits with status 1 (an unreadable config file, the exit switch)."""


# --------------------------------------------------------------------------- logging

class CarbonLog:
    """Appends lines in Carbon's log4j layout; echoes the console layout to stdout."""

    def __init__(self, path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self._file = open(path, "a", encoding="utf-8")
        self._lock = threading.Lock()

    def line(self, level, cls, message):
        now = datetime.datetime.now()
        stamp = now.strftime("%Y-%m-%d %H:%M:%S") + ",%03d" % (now.microsecond // 1000)
        with self._lock:
            self._file.write("TID: [0] [AM] [%s] %5s {%s} -  %s {%s}\n"
                             % (stamp, level, cls, message, cls))
            self._file.flush()
            try:
                sys.stdout.write("[%s] %5s {%s} -  %s\n" % (stamp, level, cls, message))
                sys.stdout.flush()
            except OSError:
                pass  # stdout is /dev/null or closed in daemon mode

    def info(self, cls, message):
        self.line("INFO", cls, message)

    def warn(self, cls, message):
        self.line("WARN", cls, message)

    def error(self, cls, message):
        self.line("ERROR", cls, message)


# --------------------------------------------------------------------------- XML helpers

def local_name(tag):
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def child(element, name):
    if element is None:
        return None
    for c in element:
        if local_name(c.tag) == name:
            return c
    return None


def children(element, name):
    return [] if element is None else [c for c in element if local_name(c.tag) == name]


def at(element, path):
    """The element at a slash-separated path of local names (namespaces ignored)."""
    for part in path.split("/"):
        element = child(element, part)
    return element


def text_at(element, path, default=None):
    found = at(element, path)
    if found is None or found.text is None:
        return default
    return found.text.strip()


def load_xml(log, relative):
    path = os.path.join(CARBON_HOME, relative)
    try:
        return ET.parse(path).getroot()
    except FileNotFoundError:
        log.error(C_CORE, "Cannot read %s: file not found" % path)
    except PermissionError:
        # The server runs as the service user: a file it may not read stops it as the
        # JVM's FileInputStream would.
        log.error(C_CORE, "Cannot read %s: java.io.FileNotFoundException: %s (Permission denied)"
                  % (path, path))
    except ET.ParseError as err:
        log.error(C_CORE, "Error while parsing %s: %s" % (path, err))
    raise FatalStartup()


# --------------------------------------------------------------------------- settings

def system_properties(argv):
    """-Dname=value pairs of the command line: the JVM's own (JAVA_OPTS reaches them
    through wso2server.sh) and Carbon's arguments after the main class, which Carbon
    turns into system properties too."""
    props = {}
    for word in argv:
        if word.startswith("-D"):
            name, _, value = word[2:].partition("=")
            props[name] = value
    return props


def start_delay():
    env = os.environ.get("STANDIN_START_DELAY")
    if env:
        return float(env)
    path = os.path.join(CARBON_HOME, "bin", "standin.properties")
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                name, _, value = line.strip().partition("=")
                if name == "start.delay.secs":
                    return float(value)
    except FileNotFoundError:
        pass
    return DEFAULT_START_DELAY


def hosts_file_lookup(name):
    """The first address the hosts file gives `name`, or None (no DNS: like a lab host)."""
    path = os.environ.get("STANDIN_HOSTS_FILE", "/etc/hosts")
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                fields = line.split("#", 1)[0].split()
                if len(fields) >= 2 and name in fields[1:]:
                    return fields[0]
    except FileNotFoundError:
        pass
    return None


def resolve(host):
    """An IP literal as is, otherwise the hosts-file address; None when it does not resolve."""
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        return hosts_file_lookup(host)


def local_ip():
    """What Carbon calls carbon.local.ip: this host's own address."""
    forced = os.environ.get("STANDIN_LOCAL_IP")
    if forced:
        return forced
    return resolve(socket.gethostname()) or "127.0.0.1"


# --------------------------------------------------------------------------- node config

class Node:
    """Everything the server needs from the node's own configuration files."""

    def __init__(self, log, argv):
        self.log = log
        self.props = system_properties(argv)
        carbon = load_xml(log, "repository/conf/carbon.xml")
        catalina = load_xml(log, "repository/conf/tomcat/catalina-server.xml")
        self.axis2 = load_xml(log, "repository/conf/axis2/axis2.xml")
        self.apim = load_xml(log, "repository/conf/api-manager.xml")
        self.datasources_xml = load_xml(log, "repository/conf/datasources/master-datasources.xml")
        self.user_mgt = load_xml(log, "repository/conf/user-mgt.xml")
        self.registry = load_xml(log, "repository/conf/registry.xml")

        self.offset = self._offset(carbon)
        self.host_name = text_at(carbon, "HostName")
        self.ip = local_ip()
        self.http_port, self.https_port = self._servlet_ports(catalina)
        self.nio_http_port = self._nio_port("http")
        self.nio_https_port = self._nio_port("https")
        self.bind_address = os.environ.get("STANDIN_BIND_ADDRESS", "0.0.0.0")
        self.own_addresses = self._own_addresses()

    def _offset(self, carbon):
        raw = self.props.get("portOffset", text_at(carbon, "Ports/Offset", "0"))
        try:
            return int(raw)
        except ValueError:
            self.log.error(C_CORE, "Invalid port offset %r in carbon.xml Ports/Offset" % raw)
            raise FatalStartup()

    def _servlet_ports(self, catalina):
        http, https = 9763, 9443
        for connector in catalina.iter("Connector"):
            port = int(connector.get("port", "0"))
            if connector.get("SSLEnabled") == "true" or connector.get("scheme") == "https":
                https = port
            else:
                http = port
        return http + self.offset, https + self.offset

    def _nio_port(self, transport):
        for receiver in children(self.axis2, "transportReceiver"):
            if receiver.get("name") == transport:
                for param in children(receiver, "parameter"):
                    if param.get("name") == "port":
                        return int(param.text.strip()) + self.offset
        return None

    def _own_addresses(self):
        own = {"127.0.0.1", "::1", self.ip}
        for name in (socket.gethostname(), "localhost", self.host_name):
            address = resolve(name) if name else None
            if address:
                own.add(address)
        return own

    def resolve_placeholders(self, value):
        replacements = {
            "${carbon.local.ip}": self.ip,
            "${mgt.transport.https.port}": str(self.https_port),
            "${mgt.transport.http.port}": str(self.http_port),
            "${http.nio.port}": str(self.nio_http_port),
            "${https.nio.port}": str(self.nio_https_port),
            "${carbon.context}": "",
        }
        for placeholder, actual in replacements.items():
            value = value.replace(placeholder, actual)
        return value

    def is_self(self, host, port):
        address = resolve(host)
        return address in self.own_addresses and port in (self.https_port, self.http_port)

    def console_host(self):
        return self.host_name or self.ip


# --------------------------------------------------------------------------- ports

class Port:
    """A reserved (bound, not yet listening) TCP port and what will serve it."""

    def __init__(self, label, cls, port, address, kind):
        self.label = label      # e.g. "Pass-through HTTP Listener"
        self.cls = cls          # class to log from
        self.port = port
        self.address = address
        self.kind = kind        # "http", "https" or "raw"
        self.sock = None
        self.server = None

    def reserve(self, log):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.address, self.port))
        except OSError as err:
            sock.close()
            log.error(self.cls, "Couldn't bind %s to %s:%d: java.net.BindException: %s"
                      % (self.label, self.address, self.port, err.strerror or err))
            return False
        self.sock = sock
        return True


def plan_ports(node):
    """Every port this node opens, in the order Carbon opens them."""
    address = node.bind_address
    ports = []
    if node.nio_https_port is not None:
        ports.append(Port("Pass-through HTTPS Listener", C_PT_HTTPS, node.nio_https_port,
                          address, "https"))
    if node.nio_http_port is not None:
        ports.append(Port("Pass-through HTTP Listener", C_PT_HTTP, node.nio_http_port,
                          address, "http"))
    ports.append(Port("Connector[HTTP/1.1-%d]" % node.http_port, C_TOMCAT, node.http_port,
                      address, "http"))
    ports.append(Port("Connector[HTTP/1.1-%d]" % node.https_port, C_TOMCAT, node.https_port,
                      address, "https"))
    thrift = thrift_port(node)
    if thrift is not None:
        ports.append(Port("thrift key mgt service", C_THRIFT, thrift[1], thrift[0], "raw"))
    member = hazelcast_port(node)
    if member is not None:
        ports.append(Port("Hazelcast member", C_HAZELCAST, member, address, "raw"))
    return ports


def thrift_port(node):
    validator = child(node.apim, "APIKeyValidator")
    if text_at(validator, "EnableThriftServer", "false").lower() != "true":
        return None
    port = int(text_at(validator, "ThriftServerPort", "10398"))
    host = text_at(validator, "ThriftServerHost") or node.console_host()
    address = resolve(host) or node.bind_address
    if node.bind_address != "0.0.0.0" and address not in node.own_addresses:
        address = node.bind_address
    return address, port


def clustering(node):
    return child(node.axis2, "clustering")


def clustering_enabled(node):
    element = clustering(node)
    return element is not None and element.get("enable", "false").lower() == "true"


def cluster_param(node, name, default=None):
    for param in children(clustering(node), "parameter"):
        if param.get("name") == name and param.text:
            return param.text.strip()
    return default


def hazelcast_port(node):
    if not clustering_enabled(node):
        return None
    return int(cluster_param(node, "localMemberPort", "4000"))


# --------------------------------------------------------------------------- serving

class StandInHandler(BaseHTTPRequestHandler):
    """Answers every request with 200 and a short page, like a live Carbon servlet."""

    server_version = "WSO2 Carbon Server"
    sys_version = ""
    timeout = 10

    def setup(self):
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(self.timeout)
            self.request.do_handshake()
        super().setup()

    def _answer(self, with_body):
        body = ("<html><body>%s %s stand-in: %s</body></html>\n"
                % (PRODUCT, VERSION, self.path)).encode("ascii", "replace")
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    def do_GET(self):
        self._answer(True)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self._answer(True)

    def do_HEAD(self):
        self._answer(False)

    def log_message(self, *args):
        pass


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # clients that only probe the TCP port or fail the handshake


def tls_context(log):
    """A server context with a self-signed certificate made by openssl, or None."""
    directory = os.path.join(CARBON_HOME, "tmp", "standin-tls")
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    if not (os.path.exists(cert) and os.path.exists(key)):
        openssl = shutil.which("openssl") or "/usr/bin/openssl"
        os.makedirs(directory, exist_ok=True)
        try:
            subprocess.run([openssl, "req", "-x509", "-newkey", "ec",
                            "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                            "-keyout", key, "-out", cert, "-days", "3650",
                            "-subj", "/O=WSO2/CN=localhost"],
                           check=True, capture_output=True, timeout=30)
        except (OSError, subprocess.SubprocessError) as err:
            log.warn(C_STANDIN, "No TLS certificate (%s); https ports accept plain TCP" % err)
            return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


def serve(port, context):
    """Starts listening on a reserved port and serving it in a daemon thread."""
    port.sock.listen(128)
    if port.kind == "raw":
        thread = threading.Thread(target=accept_and_close, args=(port.sock,), daemon=True)
        thread.start()
        return
    sock = port.sock
    if port.kind == "https" and context is not None:
        sock = context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
    server = QuietServer((port.address, port.port), StandInHandler, bind_and_activate=False)
    server.socket.close()
    server.socket = sock
    port.server = server
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                     daemon=True).start()


def accept_and_close(sock):
    while True:
        try:
            conn, _ = sock.accept()
            conn.close()
        except OSError:
            return


def stop_serving(port):
    if port.server is not None:
        port.server.shutdown()
        port.server.server_close()
    elif port.sock is not None:
        try:
            port.sock.close()
        except OSError:
            pass


# --------------------------------------------------------------------------- datasources

class DataSource:
    def __init__(self, element):
        config = at(element, "definition/configuration")
        self.name = text_at(element, "name", "")
        self.jndi = text_at(element, "jndiConfig/name", "")
        self.url = text_at(config, "url", "")
        self.username = text_at(config, "username", "")
        self.password = text_at(config, "password", "")
        self.driver = text_at(config, "driverClassName", "")


def defined_datasources(node):
    found = {}
    for element in children(at(node.datasources_xml, "datasources"), "datasource"):
        source = DataSource(element)
        found[source.jndi] = source
    return found


def datasource_uses(node):
    """(jndi name, purpose, logging class, probe tables, creating script) per datasource in use."""
    uses = [(text_at(node.apim, "DataSourceName", "jdbc/WSO2AM_DB"), "API Manager",
             C_APIM_DB, ("AM_SUBSCRIBER", "IDN_BASE_TABLE"), AM_SCRIPT)]
    for prop in children(at(node.user_mgt, "Realm/Configuration"), "Property"):
        if prop.get("name") == "dataSource" and prop.text:
            uses.append((prop.text.strip(), "user store", C_USER, ("UM_TENANT",), CARBON_SCRIPT))
    for db_config in children(node.registry, "dbConfig"):
        jndi = text_at(db_config, "dataSource")
        if jndi:
            purpose = "registry dbConfig '%s'" % db_config.get("name", "")
            uses.append((jndi, purpose, C_REGISTRY, ("REG_RESOURCE",), CARBON_SCRIPT))
    return uses


def mask_url(url):
    return re.sub(r"(?i)(password=)[^&;]*", r"\1****", url)


AM_SCRIPT = "dbscripts/apimgt/mysql.sql"
CARBON_SCRIPT = "dbscripts/mysql.sql"
C_DB_CREATOR = "org.wso2.carbon.utils.dbcreator.DatabaseCreator"
C_AM_DB_CREATOR = "org.wso2.carbon.apimgt.impl.utils.LocalDatabaseCreator"
MYSQL_URL = re.compile(r"^jdbc:(mysql|mariadb)://([^/:?,]+)(?::(\d+))?/([^?;]*)")


def check_datasources(node):
    log = node.log
    defined = defined_datasources(node)
    failures = 0
    for jndi, purpose, cls, probes, script in datasource_uses(node):
        source = defined.get(jndi)
        if source is None:
            log.error(cls, "Error in looking up data source %s for the %s: "
                      "javax.naming.NameNotFoundException: Name [%s] is not bound in this Context"
                      % (jndi, purpose, jndi))
            failures += 1
            continue
        try:
            check_datasource(node, source, purpose, cls, probes, script)
        except StartupFailed:
            failures += 1
    if failures:
        raise StartupFailed()


def check_datasource(node, source, purpose, cls, probes, script):
    log = node.log
    if source.url.startswith("jdbc:h2:"):
        return
    match = MYSQL_URL.match(source.url)
    where = "%s (%s, url %s, user %s)" % (source.name, source.jndi, mask_url(source.url),
                                          source.username)
    if not match:
        log.error(cls, "Cannot use datasource %s for the %s: the stand-in supports only "
                  "jdbc:mysql:// and jdbc:h2: URLs" % (where, purpose))
        raise StartupFailed()
    host, port, database = match.group(2), int(match.group(3) or 3306), match.group(4)
    if not driver_available(log, source.driver):
        fail_pool(log, cls, where, purpose,
                  "java.lang.ClassNotFoundException: %s (no jar in repository/components/lib "
                  "provides it)" % (source.driver or "(no driverClassName)"))
    address = resolve(host)
    if address is None:
        fail_pool(log, cls, where, purpose,
                  "com.mysql.jdbc.exceptions.jdbc4.CommunicationsException: Communications link "
                  "failure: java.net.UnknownHostException: %s" % host)
    login = (address, port, database, source.username, source.password)
    query = "".join("SELECT 1 FROM %s LIMIT 1; " % table for table in probes)
    ok, message = run_mysql(login, query)
    if not ok and "setup" in node.props and "doesn't exist" in message:
        create_tables(node, login, script, cls, where, purpose)
        ok, message = run_mysql(login, query)
    elif ok and "setup" in node.props and script == AM_SCRIPT:
        log.info(C_AM_DB_CREATOR, "APIManager database already exists. Not creating a new database.")
    if not ok:
        fail_pool(log, cls, where, purpose, message)


def create_tables(node, login, script, cls, where, purpose):
    """-Dsetup: what Carbon's DatabaseCreator does when the probe table is missing."""
    node.log.info(C_AM_DB_CREATOR if script == AM_SCRIPT else C_DB_CREATOR,
                  "Creating the tables of %s from %s (-Dsetup)" % (login[2], script))
    with open(os.path.join(CARBON_HOME, script), encoding="utf-8") as handle:
        ok, message = run_mysql(login, None, stdin=handle.read())
    if not ok:
        node.log.error(cls, "Cannot create the database tables for the %s in %s: %s"
                       % (purpose, where, message))
        raise StartupFailed()


def fail_pool(log, cls, where, purpose, message):
    log.error(C_POOL, "Unable to create initial connections of pool.")
    log.error(cls, "Cannot use datasource %s for the %s: %s" % (where, purpose, message))
    raise StartupFailed()


def driver_available(log, driver_class):
    """True when a jar in repository/components/lib holds the driver class. A jar the
    server's user cannot open is logged as the JVM reports it, then skipped."""
    if not driver_class:
        return False
    entry = driver_class.replace(".", "/") + ".class"
    lib = os.path.join(CARBON_HOME, "repository", "components", "lib")
    try:
        names = sorted(os.listdir(lib))
    except FileNotFoundError:
        return False
    for name in names:
        if not name.endswith(".jar"):
            continue
        path = os.path.join(lib, name)
        try:
            with zipfile.ZipFile(path) as jar:
                if entry in jar.namelist():
                    return True
        except PermissionError:
            log.error(C_CORE, "Invalid jar file %s: java.io.FileNotFoundException: %s "
                      "(Permission denied)" % (path, path))
        except (OSError, zipfile.BadZipFile):
            log.error(C_CORE, "Invalid jar file %s: java.util.zip.ZipException: error in "
                      "opening zip file" % path)
    return False


def mysql_client():
    for name in ("mariadb", "mysql"):
        found = shutil.which(name) or ("/usr/bin/" + name if os.path.exists("/usr/bin/" + name)
                                       else None)
        if found:
            return found
    return None


def option_value(value):
    return '"%s"' % value.replace("\\", "\\\\").replace('"', '\\"')


def run_mysql(login, query, stdin=None):
    """Runs `query` (or the SQL on `stdin`) as the login's user; returns (ok, message).
    The password only ever sits in a 0600 defaults file that is removed afterwards."""
    address, port, database, user, password = login
    client = mysql_client()
    if client is None:
        return False, "stand-in: no mariadb or mysql client on this host"
    fd, defaults = tempfile.mkstemp(prefix="standin-", suffix=".cnf")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write("[client]\nhost=%s\nport=%d\nuser=%s\npassword=%s\n"
                         % (address, port, option_value(user), option_value(password)))
        argv = [client, "--defaults-file=" + defaults, "--protocol=TCP", "--batch",
                "--skip-column-names", "--connect-timeout=5", "--database=" + database]
        if query is not None:
            argv += ["-e", query]
        try:
            done = subprocess.run(argv, input=stdin or "", capture_output=True, text=True,
                                  timeout=120)
        except subprocess.TimeoutExpired:
            return False, ("com.mysql.jdbc.exceptions.jdbc4.CommunicationsException: "
                           "Communications link failure (no answer from %s:%d)" % (address, port))
        if done.returncode == 0:
            return True, done.stdout
        return False, java_exception(done.stderr.strip().splitlines() or ["(no output)"])
    finally:
        os.unlink(defaults)


def java_exception(lines):
    """Maps the client's 'ERROR nnnn (state): text' to the exception Connector/J throws."""
    pattern = re.compile(r"ERROR (\d+) \(([^)]*)\)(?: at line \d+)?: (.*)")
    match = next(filter(None, (pattern.match(line) for line in lines)), None)
    if not match:
        return "java.sql.SQLException: " + " ".join(lines)
    code, text = int(match.group(1)), match.group(3)
    if code in (2002, 2003, 2005, 2006, 2013):
        return ("com.mysql.jdbc.exceptions.jdbc4.CommunicationsException: Communications "
                "link failure: " + text)
    if code in (1146, 1049, 1064):
        return "com.mysql.jdbc.exceptions.jdbc4.MySQLSyntaxErrorException: " + text
    return "java.sql.SQLException: " + text


# --------------------------------------------------------------------------- user store

def user_store_login(node):
    """The MySQL login of the primary user store, None when it is not MySQL (H2)."""
    config = at(node.user_mgt, "Realm/Configuration")
    jndi = next((p.text.strip() for p in children(config, "Property")
                 if p.get("name") == "dataSource" and p.text), None)
    source = defined_datasources(node).get(jndi)
    match = MYSQL_URL.match(source.url) if source is not None else None
    if not match:
        return None
    address = resolve(match.group(2))
    if address is None:
        return None
    return (address, int(match.group(3) or 3306), match.group(4), source.username,
            source.password)


def store_property(node, name):
    for manager in children(at(node.user_mgt, "Realm"), "UserStoreManager"):
        for prop in children(manager, "Property"):
            if prop.get("name") == name:
                return (prop.text or "").strip()
    return None


def password_digest(node, password, salt):
    """What JDBCUserStoreManager.preparePassword stores: the password followed by the salt
    text, digested by PasswordDigest and base64-encoded (plain text without a digest)."""
    function = store_property(node, "PasswordDigest")
    if not function or function == "PLAIN_TEXT":
        return password
    data = (password + (salt or "")).encode("utf-8")
    return base64.b64encode(hashlib.new(function.replace("-", "").lower(), data).digest()).decode()


def sql_literal(value):
    return "'%s'" % value.replace("\\", "\\\\").replace("'", "''")


def admin_account(node):
    admin = at(node.user_mgt, "Realm/Configuration/AdminUser")
    return text_at(admin, "UserName", ""), text_at(admin, "Password", "")


def stored_admin(node, login, user):
    """(digest, salt) of the user in the super tenant, or None."""
    ok, out = run_mysql(login, "SELECT UM_USER_PASSWORD, IFNULL(UM_SALT_VALUE, '') FROM UM_USER "
                               "WHERE UM_USER_NAME = %s AND UM_TENANT_ID = %d"
                        % (sql_literal(user), SUPER_TENANT_ID))
    if not ok:
        node.log.error(C_USER, "Cannot read the user store: %s" % out)
        raise StartupFailed()
    for line in out.splitlines():
        digest, _, salt = line.partition("\t")
        return digest, salt
    return None


def add_admin(node, login, user, password):
    """addInitialAdminData: only a missing admin is created, from user-mgt.xml."""
    if text_at(at(node.user_mgt, "Realm/Configuration"), "AddAdmin", "false") != "true":
        node.log.error(C_USER_STORE, "Admin user can not be created in primary user store. "
                       "Add-Admin has been set to false. Please pick a User name which is exist "
                       "in the primary user store as Admin user")
        raise StartupFailed()
    salt = None
    if store_property(node, "StoreSaltedPassword") == "true":
        salt = base64.b64encode(os.urandom(16)).decode()
    # On stdin: the digest stays off the client's command line.
    ok, out = run_mysql(login, None, stdin="INSERT INTO UM_USER (UM_USER_NAME, UM_USER_PASSWORD, "
                        "UM_SALT_VALUE, UM_REQUIRE_CHANGE, UM_CHANGED_TIME, UM_TENANT_ID) "
                        "VALUES (%s, %s, %s, FALSE, NOW(), %d);\n"
                        % (sql_literal(user), sql_literal(password_digest(node, password, salt)),
                           sql_literal(salt) if salt else "NULL", SUPER_TENANT_ID))
    # Two nodes starting together: the other one's row wins, as the unique key says.
    if not ok and "Duplicate entry" not in out:
        node.log.error(C_USER, "Cannot add the admin user to the user store: %s" % out)
        raise StartupFailed()


def presented_credentials(node):
    """(what, user, password) of each admin login this node makes to another node: the
    Key Manager (APIKeyValidator, AuthManager) and the Gateways (Environment)."""
    admin_user, admin_password = admin_account(node)

    def value(element, name):
        text = text_at(element, name, "")
        return text.replace("${admin.username}", admin_user) \
                   .replace("${admin.password}", admin_password)

    blocks = [("APIKeyValidator", at(node.apim, "APIKeyValidator")),
              ("AuthManager", at(node.apim, "AuthManager"))]
    for env in children(at(node.apim, "APIGateway/Environments"), "Environment"):
        blocks.append(("APIGateway Environment '%s'" % text_at(env, "Name", ""), env))
    found = []
    for what, block in blocks:
        url = node.resolve_placeholders(text_at(block, "ServerURL", "")) if block is not None else ""
        if url and not url_is_self(node, url):
            found.append((what, value(block, "Username"), value(block, "Password")))
    return found


def check_admin_credentials(node):
    """The admin lives in the shared user store once created; every login a node makes to
    another node with credentials the store rejects fails, so the node is not healthy."""
    login = user_store_login(node)
    if login is None:
        return
    admin_user, admin_password = admin_account(node)
    if stored_admin(node, login, admin_user) is None:
        add_admin(node, login, admin_user, admin_password)
    failures = 0
    for what, user, password in presented_credentials(node):
        stored = stored_admin(node, login, user)
        if stored is not None and password_digest(node, password, stored[1]) == stored[0]:
            continue
        node.log.error(C_AUTH_ADMIN, "Failed Administrator login attempt '%s[%d]' at [%s] "
                       "with the %s credentials of api-manager.xml: the user store does not "
                       "accept them" % (user, SUPER_TENANT_ID,
                                        datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S"),
                                        what))
        failures += 1
    if failures:
        raise StartupFailed()


def check_registry_references(node):
    """Each remoteInstance's dbConfig and each mount's instanceId must name something
    defined in registry.xml, and currentDBConfig must name a dbConfig."""
    log = node.log
    db_configs = {c.get("name") for c in children(node.registry, "dbConfig")}
    instances = set()
    problems = []
    current = text_at(node.registry, "currentDBConfig")
    if current not in db_configs:
        problems.append("currentDBConfig '%s' names no dbConfig" % current)
    for instance in children(node.registry, "remoteInstance"):
        instance_id = text_at(instance, "id", "")
        instances.add(instance_id)
        db_config = text_at(instance, "dbConfig")
        if db_config is not None and db_config not in db_configs:
            problems.append("remoteInstance '%s' uses dbConfig '%s', which is not defined"
                            % (instance_id, db_config))
    for mount in children(node.registry, "mount"):
        instance_id = text_at(mount, "instanceId", "")
        if instance_id not in instances:
            problems.append("mount '%s' uses instanceId '%s', which no remoteInstance has"
                            % (mount.get("path", ""), instance_id))
    for problem in problems:
        log.error(C_REG_CONFIG, "Error in registry.xml: %s" % problem)
    if problems:
        raise StartupFailed()


# --------------------------------------------------------------------------- peers

def peer_urls(node):
    """The other nodes this node must reach at start: (what, url), [] for a Key Manager."""
    validator_url = node.resolve_placeholders(
        text_at(node.apim, "APIKeyValidator/ServerURL", ""))
    if not validator_url or url_is_self(node, validator_url):
        return []  # the Key Manager starts first and must not wait for anyone
    urls = [("Key Manager (APIKeyValidator/ServerURL)", validator_url)]
    auth_url = node.resolve_placeholders(text_at(node.apim, "AuthManager/ServerURL", ""))
    if auth_url and auth_url != validator_url:
        urls.append(("authentication server (AuthManager/ServerURL)", auth_url))
    for env in children(at(node.apim, "APIGateway/Environments"), "Environment"):
        url = node.resolve_placeholders(text_at(env, "ServerURL", ""))
        if url:
            urls.append(("API Gateway '%s' (Environment/ServerURL)" % text_at(env, "Name", ""),
                         url))
    return [(what, url) for what, url in urls if not url_is_self(node, url)]


def url_host_port(url):
    parts = urllib.parse.urlsplit(url)
    default = 443 if parts.scheme == "https" else 80
    return parts.hostname or "", parts.port or default


def url_is_self(node, url):
    host, port = url_host_port(url)
    return node.is_self(host, port)


def check_peers(node):
    failures = 0
    for what, url in peer_urls(node):
        host, port = url_host_port(url)
        address = resolve(host)
        if address is None:
            problem = "java.net.UnknownHostException: %s" % host
        else:
            problem = tcp_problem(address, port)
        if problem:
            node.log.error(C_APIM, "Cannot reach the %s at %s: %s" % (what, url, problem))
            failures += 1
    if failures:
        raise StartupFailed()


def tcp_problem(address, port):
    try:
        with socket.create_connection((address, port), timeout=3):
            return None
    except OSError as err:
        return "java.net.ConnectException: %s" % (err.strerror or err)


def log_cluster_members(node):
    """Joins as the TCP/IP joiner of the Hazelcast bundled with Carbon 4.2 does: it connects
    to every well-known member at once and waits for answers up to one connection timeout
    in all (Hazelcast's tcp-ip connection-timeout-seconds), not member after member; a
    member that has not answered by then is reported as not up and the node starts anyway."""
    targets = []
    for member in children(at(clustering(node), "members"), "member"):
        host = text_at(member, "hostName", "")
        port = int(text_at(member, "port", "0"))
        address = resolve(host)
        if not address or (address in node.own_addresses and port == hazelcast_port(node)):
            continue
        targets.append((host, address, port))
    results = {}

    def probe(target):
        results[target] = tcp_problem(target[1], target[2])

    threads = [threading.Thread(target=probe, args=(t,), daemon=True) for t in targets]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 3
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    for target in targets:
        host, address, port = target
        if target in results and results[target] is None:
            node.log.info(C_HAZELCAST, "Member joined [%s:%d]" % (address, port))
        else:
            node.log.info(C_HAZELCAST, "Well-known member %s:%d is not up yet" % (host, port))


# --------------------------------------------------------------------------- lifecycle

class Server:
    def __init__(self, argv):
        self.argv = argv
        self.log = CarbonLog(os.path.join(CARBON_HOME, "repository", "logs", "wso2carbon.log"))
        self.stopping = threading.Event()
        self.ports = []

    def write_pid(self):
        data = ("%d\n" % os.getpid()).encode("ascii").ljust(100, b"\0")
        with open(os.path.join(CARBON_HOME, "wso2carbon.pid"), "wb") as handle:
            handle.write(data)

    def on_signal(self, signum, _frame):
        self.stopping.set()

    def run(self):
        signal.signal(signal.SIGTERM, self.on_signal)
        signal.signal(signal.SIGINT, self.on_signal)
        self.write_pid()
        self.log_environment()
        try:
            self.start()
        except FatalStartup:
            self.release_ports()
            return 1
        except (ValueError, AttributeError, OSError) as err:
            # e.g. a port that is not a number: Carbon dies with the Java equivalent.
            self.log.error(C_CORE, "Error while starting the server: %s: %s"
                           % (type(err).__name__, err))
            self.release_ports()
            return 1
        except StartupFailed:
            self.release_ports()
        self.stopping.wait()
        self.shutdown()
        return 0

    def log_environment(self):
        log = self.log
        log.info(C_CORE, "Starting WSO2 Carbon...")
        log.info(C_CORE, "Operating System : %s %s, %s"
                 % (platform.system(), platform.release(), platform.machine()))
        # java.home and java.version, as the stand-in JDK's java passes them on.
        log.info(C_CORE, "Java Home        : %s" % os.environ.get("STANDIN_JAVA_HOME", ""))
        log.info(C_CORE, "Java Version     : %s" % os.environ.get("STANDIN_JAVA_VERSION", ""))
        log.info(C_CORE, "Java VM          : %s (stand-in: python %s)"
                 % (os.environ.get("STANDIN_JAVA_VM", ""), platform.python_version()))
        log.info(C_CORE, "Carbon Home      : %s" % CARBON_HOME)
        log.info(C_CORE, "Java Temp Dir    : %s" % os.path.join(CARBON_HOME, "tmp"))
        log.info(C_STANDIN, "This is the apim-deploy stand-in, not WSO2 Carbon")

    def start(self):
        log = self.log
        if os.path.exists(os.path.join(CARBON_HOME, EXIT_EARLY_FILE)) or \
                os.environ.get("STANDIN_EXIT_EARLY") == "1":
            log.error(C_SERVER_MGR, "WSO2 Carbon initialization Failed: the JVM exits "
                      "(stand-in exit switch: %s or STANDIN_EXIT_EARLY=1)" % EXIT_EARLY_FILE)
            raise FatalStartup()
        node = Node(log, self.argv)
        self.ports = plan_ports(node)
        # Every taken port gets its line; then, like Carbon, the process stays up unstarted.
        bound = [port.reserve(log) for port in self.ports]
        if not all(bound):
            raise StartupFailed()

        check_registry_references(node)
        check_datasources(node)
        check_admin_credentials(node)
        if self.stopping.is_set():
            return
        log.info(C_REGISTRY, "Configured Registry in 12ms")
        log.info(C_REGISTRY_MODE, "Registry Mode    : READ-WRITE")
        log.info(C_USER_OK, "Carbon UserStoreMgtDSComponent activated successfully.")
        if not self.pause(0.2):
            return

        if clustering_enabled(node):
            log.info(C_HAZELCAST, "Initializing cluster...")
            log.info(C_HAZELCAST, "Cluster domain: %s" % cluster_param(node, "domain", ""))
            log.info(C_HAZELCAST, "Using %s based membership management scheme"
                     % cluster_param(node, "membershipScheme", "multicast"))
        else:
            log.info(C_CLUSTER_OFF, "Clustering has been disabled")
        if "setup" not in node.props:
            log.info(C_IDP, "Identity Application Management Database initialization not "
                     "attempted since 'setup' variable was not provided during startup")

        if os.path.exists(os.path.join(CARBON_HOME, REFUSE_FILE)) or \
                os.environ.get("STANDIN_REFUSE_START") == "1":
            log.error(C_FINALIZER, "Refusing to finish start-up: %s is present or "
                      "STANDIN_REFUSE_START=1 (stand-in failure switch)" % REFUSE_FILE)
            raise StartupFailed()

        if self.stopping.is_set():
            return
        self.open_ports(node)
        if clustering_enabled(node):
            log_cluster_members(node)
        check_peers(node)

        # The checks above run within the start-up time, as Carbon's own start-up work does.
        if not self.pause(max(0.0, start_delay() - (time.time() - PROCESS_START))):
            return
        self.log_started(node)

    def open_ports(self, node):
        log = self.log
        context = tls_context(log)
        for port in self.ports:
            serve(port, context)
            if port.cls in (C_PT_HTTP, C_PT_HTTPS):
                log.info(port.cls, "%s started on 0:0:0:0:0:0:0:0:%d" % (port.label, port.port))
        log.info(C_NIO, "Using a shared selector for servlet write/read")

    def log_started(self, node):
        log = self.log
        log.info(C_JMX, "JMX Service URL  : service:jmx:rmi://localhost:%d/jndi/rmi://localhost:%d/jmxrmi"
                 % (11111 + node.offset, 9999 + node.offset))
        log.info(C_FINALIZER, "Server           :  %s-%s" % (PRODUCT, VERSION))
        log.info(C_FINALIZER, "WSO2 Carbon started in %d sec" % int(time.time() - PROCESS_START))
        host = node.console_host()
        log.info(C_UI, "Mgt Console URL  : https://%s:%d/carbon/" % (host, node.https_port))
        log.info(C_UI, "API Publisher Default Context : http://%s:%d/publisher"
                 % (host, node.http_port))
        log.info(C_UI, "API Store Default Context : http://%s:%d/store" % (host, node.http_port))
        thrift = thrift_port(node)
        if thrift is not None:
            log.info(C_THRIFT, "Setting default carbon host for thrift key management service: %s"
                     % host)
            log.info(C_THRIFT, "Started thrift key mgt service at port:%d" % thrift[1])

    def pause(self, seconds):
        """Sleeps unless a stop arrives first; False when stopping."""
        return not self.stopping.wait(seconds)

    def release_ports(self):
        """Closes every port: a node that failed to start answers on none of them."""
        for port in self.ports:
            stop_serving(port)
        self.ports = []

    def shutdown(self):
        log = self.log
        log.info(C_SERVER_MGR, "Shutdown hook triggered....")
        log.info(C_SERVER_MGR, "Gracefully shutting down %s..." % PRODUCT)
        log.info(C_SERVER_MGMT, "Starting to switch to maintenance mode...")
        for port in self.ports:
            if port.cls in (C_PT_HTTP, C_PT_HTTPS):
                log.info(port.cls, "Stopping %s.." % port.label)
        log.info(C_SERVER_MGMT, "Stopped all transport listeners")
        log.info(C_SERVER_MGMT, "Waiting for request service completion...")
        time.sleep(0.3)
        log.info(C_SERVER_MGMT, "All requests have been served.")
        log.info(C_SERVER_MGMT, "Waiting for deployment completion...")
        time.sleep(0.3)
        log.info(C_SERVER_MGMT, "All deployment tasks have been completed.")
        log.info(C_SERVER_MGR, "Shutting down %s..." % PRODUCT)
        for port in self.ports:
            stop_serving(port)
        time.sleep(0.3)
        log.info(C_SERVER_MGR, "Stopping CarbonServerManager...")
        log.info(C_SERVER_MGR, "Shutdown complete")
        log.info(C_SERVER_MGR, "Halting JVM")


def main(argv):
    return Server(argv).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
