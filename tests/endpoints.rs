//! Engine endpoints other than the local socket, proven against the real
//! engine on this machine without a network: a TLS-terminating proxy
//! (stunnel) that requires a client certificate stands in front of
//! `/var/run/docker.sock` for `tcp://…` with `DOCKER_TLS_VERIFY`, and a
//! local sshd on a free port serves `ssh://…`, where bollard runs
//! `docker system dial-stdio` as the docker CLI does. Certificates and keys
//! are made per run with openssl and ssh-keygen. Missing tools are
//! installed by `scripts/test-deps.sh`, which `.ci/run` runs first.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use sha2::{Digest, Sha256};
use support::{eventually, free_port, stderr, text, warm_images, KillOnDrop, Project};

const SOCKET: &str = "/var/run/docker.sock";

/// Insists that `tool` is there: `scripts/test-deps.sh` installs it (as
/// `.ci/run` does); a test installs nothing itself.
fn ensure_tool(tool: &str, package: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .unwrap()
        .success();
    assert!(
        found,
        "these tests need `{tool}` (Debian package `{package}`): run `bash scripts/test-deps.sh` as root once"
    );
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {}", text(&out));
    out
}

fn openssl(dir: &Path, args: &[&str]) {
    run(Command::new("openssl").current_dir(dir).args(args));
}

/// A CA `name` (`<name>-ca.pem`, `<name>-ca-key.pem`) in `dir`.
fn make_ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{name}-ca-key.pem"),
            "-out",
            &format!("{name}-ca.pem"),
            "-days",
            "2",
            "-subj",
            &format!("/CN=devenv {name} test CA"),
        ],
    );
}

/// A certificate `name` (`<name>.pem`, `<name>-key.pem`) signed by CA `ca`.
fn make_cert(dir: &Path, name: &str, ca: &str, ext: &str) {
    std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{name}-key.pem"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            &format!("/CN={name}"),
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}-ca.pem"),
            "-CAkey",
            &format!("{ca}-ca-key.pem"),
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            &format!("{name}.pem"),
            "-extfile",
            &format!("{name}.ext"),
        ],
    );
}

/// A `DOCKER_CERT_PATH` folder: `ca.pem`, `cert.pem`, `key.pem` as the docker CLI names them.
fn cert_path(dir: &Path, folder: &str, ca: &str, client: &str) -> PathBuf {
    let out = dir.join(folder);
    std::fs::create_dir_all(&out).unwrap();
    for (from, to) in [
        (format!("{ca}-ca.pem"), "ca.pem"),
        (format!("{client}.pem"), "cert.pem"),
        (format!("{client}-key.pem"), "key.pem"),
    ] {
        std::fs::copy(dir.join(from), out.join(to)).unwrap();
    }
    out
}

fn wait_for_port(port: u16, what: &str, log: &Path) {
    let listening = eventually(10, || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    assert!(
        listening,
        "{what} did not listen on {port}: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// The smallest stack that still pulls nothing, publishes a port and waits
/// for an HTTP probe: the e2e suite's web image.
fn web_stack(port: u16) -> String {
    format!(
        r#"[services.web]
image = "devenv-e2e-web:latest"
ports = ["{port}:8080"]
ready = {{ http = {{ port = 8080, path = "/health" }} }}
"#
    )
}

/// `devenv` in `p` with the engine variables cleared, then `env` set.
fn devenv(p: &Project, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = p.cmd();
    for k in [
        "DOCKER_HOST",
        "DOCKER_CONTEXT",
        "DOCKER_TLS_VERIFY",
        "DOCKER_TLS",
        "DOCKER_CERT_PATH",
        "DOCKER_CONFIG",
    ] {
        cmd.env_remove(k);
    }
    cmd.envs(env.iter().copied()).args(args).output().unwrap()
}

fn ok(out: Output, what: &str) -> Output {
    assert!(out.status.success(), "{what}: {}", text(&out));
    out
}

fn fails(out: Output, what: &str) -> String {
    assert_eq!(out.status.code(), Some(1), "{what}: {}", text(&out));
    stderr(&out)
}

fn running_services(out: &Output) -> Vec<String> {
    let ps: Vec<serde_json::Value> =
        serde_json::from_slice(&out.stdout).expect("ps --json prints JSON");
    ps.iter()
        .filter(|s| s["state"] == "running")
        .map(|s| s["service"].as_str().unwrap().to_string())
        .collect()
}

/// What goes beyond plain requests: an exec attached to its output (an
/// upgraded connection) with its exit code, and a one-off container.
fn attach_and_run(p: &Project, env: &[(&str, &str)]) {
    let out = devenv(
        p,
        env,
        &["exec", "web", "--", "sh", "-c", "echo hi; exit 5"],
    );
    assert_eq!(out.status.code(), Some(5), "exec: {}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "hi");
    let out = ok(
        devenv(
            p,
            env,
            &["run", "--rm", "web", "--", "sh", "-c", "echo one-off"],
        ),
        "run",
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "one-off");
}

#[test]
fn r14_a_tls_engine_with_client_certificates_as_the_docker_cli_configures_it() {
    warm_images();
    ensure_tool("openssl", "openssl");
    ensure_tool("stunnel", "stunnel4");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    make_ca(dir, "good");
    make_ca(dir, "other");
    make_cert(
        dir,
        "server",
        "good",
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
    );
    let client_ext = "extendedKeyUsage=clientAuth\n";
    make_cert(dir, "client", "good", client_ext);
    make_cert(dir, "stranger", "other", client_ext);

    // The engine's TLS side, as `dockerd --tlsverify` has it: no client
    // certificate signed by the CA, no API. (stunnel rather than socat:
    // socat's OpenSSL server sets no session id context and so fails the
    // TLS session resumption rustls, like Go's client, attempts.)
    let port = free_port();
    let log = dir.join("stunnel.log");
    std::fs::write(
        dir.join("stunnel.conf"),
        format!(
            "foreground = yes\npid =\n[docker]\naccept = 127.0.0.1:{port}\nconnect = {SOCKET}\n\
             cert = server.pem\nkey = server-key.pem\nCAfile = good-ca.pem\n\
             verifyChain = yes\nrequireCert = yes\n"
        ),
    )
    .unwrap();
    let _proxy = KillOnDrop(
        Command::new("stunnel")
            .current_dir(dir)
            .arg("stunnel.conf")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    wait_for_port(port, "stunnel", &log);

    let host = format!("tcp://127.0.0.1:{port}");
    let good = cert_path(dir, "good", "good", "client");
    let good = good.to_str().unwrap();
    let tls = |certs: &str| {
        vec![
            ("DOCKER_HOST", host.clone()),
            ("DOCKER_TLS_VERIFY", "1".to_string()),
            ("DOCKER_CERT_PATH", certs.to_string()),
        ]
    };
    let call = |p: &Project, vars: &[(&'static str, String)], args: &[&str]| {
        let pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        devenv(p, &pairs, args)
    };

    let mut p = Project::new("engine-tls", &web_stack(free_port()));
    p.uses_docker = true;
    let out = ok(call(&p, &tls(good), &["up", "-d"]), "up over TLS");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("{} ready in", p.name)),
        "{}",
        text(&out)
    );
    let out = ok(call(&p, &tls(good), &["ps", "--json"]), "ps over TLS");
    assert_eq!(running_services(&out), ["web"], "{}", text(&out));
    let vars = tls(good);
    let pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    attach_and_run(&p, &pairs);
    // The same engine answers on its socket: the proxy forwarded, nothing else did.
    let out = ok(devenv(&p, &[], &["ps", "--json"]), "ps on the socket");
    assert_eq!(running_services(&out), ["web"], "{}", text(&out));

    // A Docker context holding the same endpoint and certificates.
    let config = dir.join("docker-config");
    let hex: String = Sha256::digest(b"engine-tls-ctx")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let meta = config.join("contexts/meta").join(&hex);
    std::fs::create_dir_all(&meta).unwrap();
    std::fs::write(
        meta.join("meta.json"),
        format!(r#"{{"Name":"engine-tls-ctx","Metadata":{{}},"Endpoints":{{"docker":{{"Host":"{host}","SkipTLSVerify":false}}}}}}"#),
    )
    .unwrap();
    let ctx_tls = config.join("contexts/tls").join(&hex).join("docker");
    std::fs::create_dir_all(ctx_tls.parent().unwrap()).unwrap();
    support::copy_dir(Path::new(good), &ctx_tls);
    let context = vec![
        ("DOCKER_CONFIG", config.to_str().unwrap().to_string()),
        ("DOCKER_CONTEXT", "engine-tls-ctx".to_string()),
    ];
    let out = ok(
        call(&p, &context, &["ps", "--json"]),
        "ps through a TLS context",
    );
    assert_eq!(running_services(&out), ["web"], "{}", text(&out));

    // A CA that did not sign the engine's certificate.
    let wrong_ca = cert_path(dir, "wrong-ca", "other", "client");
    let err = fails(
        call(&p, &tls(wrong_ca.to_str().unwrap()), &["ps"]),
        "a wrong CA",
    );
    assert!(
        err.contains(&format!(
            "the TLS handshake with the Docker engine at `{host}` (from DOCKER_HOST) failed"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "the engine's certificate is not signed by `{}/ca.pem` (from DOCKER_CERT_PATH)",
            wrong_ca.display()
        )),
        "{err}"
    );

    // A client certificate the engine's CA did not sign.
    let stranger = cert_path(dir, "stranger", "good", "stranger");
    let err = fails(
        call(&p, &tls(stranger.to_str().unwrap()), &["ps"]),
        "a client certificate of another CA",
    );
    assert!(
        err.contains("the engine refused devenv's client certificate"),
        "{err}"
    );

    // A folder without the key: named before anything is sent.
    let no_key = cert_path(dir, "no-key", "good", "client");
    std::fs::remove_file(no_key.join("key.pem")).unwrap();
    let err = fails(
        call(&p, &tls(no_key.to_str().unwrap()), &["ps"]),
        "no key.pem",
    );
    assert!(
        err.contains(&format!(
            "TLS certificate file `{}/key.pem` for the Docker engine at `{host}` (from DOCKER_HOST) does not exist",
            no_key.display()
        )),
        "{err}"
    );
    assert!(err.contains("point DOCKER_CERT_PATH at"), "{err}");

    // A cert.pem that holds no certificate.
    let bad = cert_path(dir, "bad", "good", "client");
    std::fs::write(bad.join("cert.pem"), "hello\n").unwrap();
    let err = fails(
        call(&p, &tls(bad.to_str().unwrap()), &["ps"]),
        "a bad cert.pem",
    );
    assert!(err.contains("cert.pem` for the Docker engine at"), "{err}");
    assert!(err.contains("holds no PEM certificate"), "{err}");

    // Plain HTTP against the TLS port says what to set.
    let err = fails(
        call(&p, &[("DOCKER_HOST", host.clone())], &["ps"]),
        "no DOCKER_TLS_VERIFY",
    );
    assert!(
        err.contains(&format!("cannot reach the Docker engine at `{host}`")),
        "{err}"
    );
    assert!(err.contains("DOCKER_TLS_VERIFY=1"), "{err}");

    // Nobody listening.
    let closed = format!("tcp://127.0.0.1:{}", free_port());
    let mut nobody = tls(good);
    nobody[0].1 = closed.clone();
    let err = fails(call(&p, &nobody, &["ps"]), "an unreachable host");
    assert!(
        err.contains(&format!(
            "cannot reach the Docker engine at `{closed}` (from DOCKER_HOST)"
        )),
        "{err}"
    );
    assert!(err.contains("listens there with TLS"), "{err}");
    // The cause, once: not the client's wrappers around it.
    assert!(err.contains("Connection refused"), "{err}");
    assert!(!err.contains("client error"), "{err}");

    ok(call(&p, &tls(good), &["down", "-v"]), "down over TLS");
    let out = ok(devenv(&p, &[], &["ps", "--json"]), "ps after down");
    assert!(running_services(&out).is_empty(), "{}", text(&out));
}

/// Processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let line = String::from_utf8_lossy(&raw).replace('\0', " ");
        if line.contains(needle) {
            found.push(format!("{}: {line}", entry.file_name().to_string_lossy()));
        }
    }
    found
}

#[test]
fn r14_an_ssh_engine_through_a_local_sshd() {
    warm_images();
    ensure_tool("ssh", "openssh-client");
    ensure_tool("ssh-keygen", "openssh-client");
    if !Path::new("/usr/sbin/sshd").exists() {
        ensure_tool("/usr/sbin/sshd", "openssh-server");
    }
    // bollard runs `docker system dial-stdio` on the far side, as the docker CLI does.
    ensure_tool("docker", "docker.io");
    let user = String::from_utf8(run(Command::new("id").arg("-un")).stdout)
        .unwrap()
        .trim()
        .to_string();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for key in ["host_key", "client_key"] {
        run(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", ""])
            .arg("-f")
            .arg(dir.join(key)));
    }
    std::fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys")).unwrap();
    // sshd refuses to start without its privilege-separation folder.
    std::fs::create_dir_all("/run/sshd").unwrap();
    let port = free_port();
    let d = dir.display();
    std::fs::write(
        dir.join("sshd_config"),
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\n\
             AuthorizedKeysFile {d}/authorized_keys\nPidFile {d}/sshd.pid\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
             PermitRootLogin prohibit-password\n\
             # The keys live under the world-writable temp folder.\nStrictModes no\n"
        ),
    )
    .unwrap();
    let log = dir.join("sshd.log");
    let _sshd = KillOnDrop(
        Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(dir.join("sshd_config"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    wait_for_port(port, "sshd", &log);

    // What a user keeps in ~/.ssh/config and ~/.ssh/known_hosts. ssh reads
    // them from the passwd home, not $HOME, so the test hands its own to the
    // real ssh through a wrapper first on PATH (devenv runs `ssh` from PATH).
    let closed = free_port();
    let host_key = std::fs::read_to_string(dir.join("host_key.pub")).unwrap();
    std::fs::write(
        dir.join("known_hosts"),
        format!("[127.0.0.1]:{port} {host_key}"),
    )
    .unwrap();
    let config = dir.join("ssh_config");
    std::fs::write(
        &config,
        format!(
            "Host engine-ssh\n  HostName 127.0.0.1\n  Port {port}\n\
             Host engine-ssh-down\n  HostName 127.0.0.1\n  Port {closed}\n\
             Host engine-ssh-unknown\n  HostName 127.0.0.1\n  Port {port}\n\
             UserKnownHostsFile {d}/no_known_hosts\n\
             Host *\n  IdentityFile {d}/client_key\n  IdentitiesOnly yes\n\
             UserKnownHostsFile {d}/known_hosts\n"
        ),
    )
    .unwrap();
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let real_ssh = String::from_utf8(run(Command::new("sh").args(["-c", "command -v ssh"])).stdout)
        .unwrap()
        .trim()
        .to_string();
    std::fs::write(
        bin.join("ssh"),
        format!(
            "#!/bin/sh\nexec {real_ssh} -F {} \"$@\"\n",
            config.display()
        ),
    )
    .unwrap();
    run(Command::new("chmod").arg("+x").arg(bin.join("ssh")));
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );

    let host = format!("ssh://{user}@engine-ssh");
    let env = [("DOCKER_HOST", host.as_str()), ("PATH", path.as_str())];
    let mut p = Project::new("engine-ssh", &web_stack(free_port()));
    p.uses_docker = true;
    let out = ok(devenv(&p, &env, &["up", "-d"]), "up over ssh");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("{} ready in", p.name)),
        "{}",
        text(&out)
    );
    let out = ok(devenv(&p, &env, &["ps", "--json"]), "ps over ssh");
    assert_eq!(running_services(&out), ["web"], "{}", text(&out));
    attach_and_run(&p, &env);
    let sshd_log = std::fs::read_to_string(&log).unwrap();
    assert!(
        sshd_log.contains(&format!("Accepted publickey for {user}")),
        "the engine was not reached through sshd:\n{sshd_log}"
    );
    ok(devenv(&p, &env, &["down", "-v"]), "down over ssh");
    let out = ok(devenv(&p, &[], &["ps", "--json"]), "ps on the socket");
    assert!(running_services(&out).is_empty(), "{}", text(&out));

    // Each connection's `ssh` ends with it: none outlives devenv.
    let config_text = config.display().to_string();
    assert!(
        eventually(5, || processes_mentioning(&config_text).is_empty()),
        "ssh processes left behind: {:?}",
        processes_mentioning(&config_text)
    );

    // sshd not there.
    let down = format!("ssh://{user}@engine-ssh-down");
    let err = fails(
        devenv(&p, &[("DOCKER_HOST", &down), ("PATH", &path)], &["ps"]),
        "an unreachable ssh host",
    );
    assert!(
        err.contains(&format!(
            "cannot log in over ssh to the Docker engine at `{down}` (from DOCKER_HOST)"
        )),
        "{err}"
    );
    assert!(err.contains("Connection refused"), "{err}");
    assert!(err.contains("docker system dial-stdio"), "{err}");

    // A host key ssh does not know: no prompt, a message.
    let unknown = format!("ssh://{user}@engine-ssh-unknown");
    let err = fails(
        devenv(&p, &[("DOCKER_HOST", &unknown), ("PATH", &path)], &["ps"]),
        "an unknown host key",
    );
    assert!(err.contains("Host key verification failed"), "{err}");

    // A port in the URL goes to ssh as `-p`.
    let with_port = format!("ssh://{user}@127.0.0.1:{port}");
    let out = ok(
        devenv(
            &p,
            &[("DOCKER_HOST", &with_port), ("PATH", &path)],
            &["ps", "--json"],
        ),
        "ps over ssh with a port",
    );
    assert!(running_services(&out).is_empty(), "{}", text(&out));
    assert!(
        eventually(5, || processes_mentioning(&config_text).is_empty()),
        "ssh processes left behind: {:?}",
        processes_mentioning(&config_text)
    );
}
