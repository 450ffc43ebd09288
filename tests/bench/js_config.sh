# Sourced by compare.sh and instructions.sh: the JetStream configurations
# both measure, so that their figures are about the same files.
#
# js_config CONF PORT FILE STORE_DIR: writes configuration CONF (plain, or
# perms: an account whose user may publish only its subjects and the
# JetStream API) listening on PORT, with its store in STORE_DIR, to FILE.
js_config() {
  local conf=$1 port=$2 file=$3 dir=$4
  rm -rf "$dir"; mkdir -p "$dir"
  if [[ $conf == plain ]]; then
    printf 'listen: 127.0.0.1:%s\njetstream { store_dir: "%s" }\n' "$port" "$dir" >"$file"
  else
    cat >"$file" <<CONF
listen: 127.0.0.1:$port
jetstream { store_dir: "$dir" }
accounts {
  BENCH: {
    jetstream: enabled
    users = [{user: bench, password: benchpw, permissions: {
      publish = { allow = ["bench.>", "_INBOX.>", "\$JS.API.>", "\$JS.ACK.>", "\$JS.FC.>"], deny = ["bench.secret.>"] }
      subscribe = { allow = ["bench.*", "_INBOX.>"], deny = ["bench.secret"] }
    }}]
  }
}
CONF
  fi
}
