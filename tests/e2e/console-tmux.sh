#!/usr/bin/env bash
# End to end through a real terminal: the real binary in tmux on a fresh demo workspace.
# Edit a client, save, commit, push, and watch the Server screen show the new applied commit;
# then quit and check the console exits cleanly. Then a reviewer's read-only console, a config
# that must fail closed, raw-editor text surviving a killed console, and the teammate scenario:
# a second clone pushes, the console's push replays onto it and its buffer follows; an outside
# edit under unsaved edits is rebased, never overwritten. Waits by polling the screen, never by sleeping
# a fixed time. Prints "N passed, N failed"; exits non-zero on any failure.
#
#   tests/e2e/console-tmux.sh [path/to/hessra-console]   (default: $CARGO_TARGET_DIR or target, /debug/hessra-console)
set -uo pipefail
cd "$(dirname "$0")/../.."

binary=${1:-${CARGO_TARGET_DIR:-target}/debug/hessra-console}
[ -x "$binary" ] || cargo build --quiet --bin hessra-console || exit 2
binary=$(realpath "$binary")
command -v tmux >/dev/null || { echo "tmux is required for this test (apt install tmux)"; exit 2; }

work=$(mktemp -d)
socket="hessra-e2e-$$"
tmx() { tmux -L "$socket" -f /dev/null "$@"; }
cleanup() { tmx kill-server 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

passed=0
failed=0
screen() { tmx capture-pane -p -t e2e 2>/dev/null; }
# wait_for TEXT [SECONDS]: poll the pane until TEXT appears.
wait_for() {
    local text=$1 limit=${2:-20} waited=0
    while [ "$waited" -lt $((limit * 10)) ]; do
        if screen | grep -qF -- "$text"; then return 0; fi
        sleep 0.1
        waited=$((waited + 1))
    done
    return 1
}
check() {
    local name=$1 text=$2 limit=${3:-20}
    if wait_for "$text" "$limit"; then
        echo "ok   $name"
        passed=$((passed + 1))
    else
        echo "FAIL $name: never saw \"$text\"; the screen was:"
        screen | sed 's/^/     | /'
        failed=$((failed + 1))
    fi
}
keys() { tmx send-keys -t e2e "$@"; }
text() { tmx send-keys -t e2e -l "$1"; }

# A fresh workspace on a free port, an isolated home (config, logs, token store), and a
# repository-local author: the console never commits under an invented name.
"$binary" demo init "$work/ws" >/dev/null || { echo "demo init failed"; exit 1; }
sed -i 's/^listen = .*/listen = "127.0.0.1:0"/' "$work/ws/workspace.toml"
git -C "$work/ws/policy" config user.name "E2E Operator"
git -C "$work/ws/policy" config user.email "e2e@example.test"
mkdir -p "$work/home"

tmx new-session -d -s e2e -x 120 -y 40 \
    "env HOME=$work/home XDG_CONFIG_HOME=$work/home/.config XDG_STATE_HOME=$work/home/.state \
     XDG_DATA_HOME=$work/home/.data $binary --workspace $work/ws; echo EXITED=\$?; sleep 600"
tmx set -s escape-time 0

check "the console opens on the Clients screen" "Clients (7/7)"

# alice is selected first: grant her delete on staging_api.
keys +
check "the grant prompt opens" "Grant to uri:urn:company:alice"
text "staging_api delete"
keys Enter
check "the edit is applied, unsaved" "may delete on staging_api (unsaved)"
keys C-s
check "ctrl-s saves" "saved "

keys 5
check "the Changes screen shows the semantic diff" "WIDENS uri:urn:company:alice may now delete on staging_api"
keys c
check "the commit dialog opens" "Commit message"
keys Enter
check "the confirmation names the change" "Commit clients.toml"
text y
check "the commit is made" "committed "
keys p
check "the push reaches the remote" "pushed 1 commit(s)"

head=$(git -C "$work/ws/policy" rev-parse HEAD | cut -c1-8)
keys 6
check "the Server screen shows the new applied commit" "applied $head" 20
check "and says it is in sync with local HEAD" "in sync with local HEAD" 20

keys q
check "q quits cleanly (nothing unsaved)" "EXITED=0"

# A reviewer: the same repository against a separately running server, read-only.
"$binary" serve --workspace "$work/ws" --listen 127.0.0.1:0 >"$work/serve.out" 2>&1 &
serve_pid=$!
trap 'kill $serve_pid 2>/dev/null; cleanup' EXIT
url=""
for _ in $(seq 100); do
    url=$(grep -o 'https://127.0.0.1:[0-9]*' "$work/serve.out" | head -1)
    [ -n "$url" ] && break
    sleep 0.1
done
clients="$work/ws/pki/clients"
tmx new-session -d -s review -x 120 -y 40 \
    "env HOME=$work/home XDG_CONFIG_HOME=$work/home/.config XDG_STATE_HOME=$work/home/.state \
     $binary --readonly --policy-repo $work/ws/policy --server $url \
     --cert $clients/urn_company_ops.pem --key $clients/urn_company_ops.key --ca $work/ws/pki/ca.pem; \
     echo EXITED=\$?; sleep 600"
review() { tmx capture-pane -p -t review 2>/dev/null; }
screen() { review; }
keys() { tmx send-keys -t review "$@"; }
text() { tmx send-keys -t review -l "$1"; }
check "read-only mode shows RO" " RO "
check "a read-only console opens on the review of the policy's history" "to review,"
keys space
check "space marks a change reviewed, read-only as it is" "reviewed ·"
keys 6
check "the remote server is shown as remote, with the operator certificate's identity" "remote · operator urn:company:ops"
check "it applied the pushed commit" "applied $head" 20
keys 1
text ":add-client"
keys Enter
check "mutating commands say read-only" "read-only: add-client changes the policy"
keys +
check "a mutating key says which key, what it would change and how to allow it" \
    "read-only: \`+\` (grant) changes the policy; start without --readonly to edit"
keys q
check "q quits the review console" "EXITED=0"

# A config whose readonly is not a boolean: the console starts read-only, says where and why at
# once, and Shift-Tab (ESC [ Z) moves focus back.
printf 'readonly = "yes"\n' >"$work/bad.toml"
tmx new-session -d -s closed -x 120 -y 40 \
    "env HOME=$work/home XDG_CONFIG_HOME=$work/home/.config XDG_STATE_HOME=$work/home/.state \
     HESSRA_CONSOLE_CONFIG=$work/bad.toml $binary --policy-repo $work/ws/policy; \
     echo EXITED=\$?; sleep 600"
screen() { tmx capture-pane -p -t closed 2>/dev/null; }
keys() { tmx send-keys -t closed "$@"; }
text() { tmx send-keys -t closed -l "$1"; }
check "a bad readonly is shown at start, with the file's line and column" "bad.toml:1:12: started read-only"
keys Escape
check "and the console is read-only" " RO "
keys 3 BTab y
check "Shift-Tab moves from Realms back to Assignments" "copied subject"
# Inside tmux OSC 52 is dropped by default: the copy lands in tmux's paste buffer instead.
check "inside tmux, y copies into tmux's buffer" "to the tmux buffer"
if tmx show-buffer 2>/dev/null | grep -q "uri:urn:"; then
    echo "ok   the tmux buffer holds the copied subject"
    passed=$((passed + 1))
else
    echo "FAIL the tmux buffer does not hold the copied subject: $(tmx show-buffer 2>&1 | head -c 200)"
    failed=$((failed + 1))
fi
keys q
check "q quits the read-only console" "EXITED=0"

# Text typed in the raw editor survives a killed console.
start_editor_console() {
    tmx new-session -d -s editor -x 120 -y 40 \
        "env HOME=$work/home XDG_CONFIG_HOME=$work/home/.config XDG_STATE_HOME=$work/home/.state \
         $binary --policy-repo $work/ws/policy; echo EXITED=\$?; sleep 600"
}
start_editor_console
screen() { tmx capture-pane -p -t editor 2>/dev/null; }
keys() { tmx send-keys -t editor "$@"; }
text() { tmx send-keys -t editor -l "$1"; }
check "the editor console opens" "Clients (7/7)"
keys i
check "the raw editor opens" "Esc apply & close"
text "# typed before the kill"
keys Enter
recovery_dir="$work/home/.state/hessra-console/recovery"
for _ in $(seq 50); do
    ls "$recovery_dir"/*.editor.toml >/dev/null 2>&1 && break
    sleep 0.1
done
shell_pid=$(tmx list-panes -t editor -F '#{pane_pid}')
console_pid=$(pgrep -P "$shell_pid" -f hessra-console | head -1)
[ -n "$console_pid" ] && kill -9 "$console_pid"
check "the killed console is gone" "EXITED=137"
tmx kill-session -t editor
start_editor_console
check "the next start offers the editor's text back" "Unapplied editor text found"
check "saying it was never applied" "never applied: 1 line(s) added, 0 removed"
text y
check "restoring reopens the editor with it" "# typed before the kill"
keys Escape
check "Esc applies it as an unsaved edit" "editor text applied"
keys q d
check "quitting and discarding the restored text ends the editor console" "EXITED=0"
tmx kill-session -t editor
rm -f "$recovery_dir"/*.toml

# The teammate scenario: a second clone pushes while the console works; the console's push
# replays its commit onto the teammate's (semantic rebase) and its buffer follows the rebased
# file, so its next commit keeps the teammate's work. Then an outside edit under unsaved edits
# is rebased, never overwritten.
origin=$(git -C "$work/ws/policy" remote get-url origin)
git clone --quiet "$origin" "$work/teammate" || { echo "cannot clone $origin"; exit 1; }
git -C "$work/teammate" config user.name "Teammate"
git -C "$work/teammate" config user.email "teammate@example.test"
new_client() {
    printf '\n[[clients]]\nidentifier = { type = "san_uri", value = "%s" }\nresources = [\n  { name = "billing", operations = ["read"] },\n]\n' "$1" >>"$2"
}
tmx new-session -d -s team -x 120 -y 40 \
    "env HOME=$work/home XDG_CONFIG_HOME=$work/home/.config XDG_STATE_HOME=$work/home/.state \
     $binary --policy-repo $work/ws/policy; echo EXITED=\$?; sleep 600"
team() { tmx capture-pane -p -t team 2>/dev/null; }
screen() { team; }
keys() { tmx send-keys -t team "$@"; }
text() { tmx send-keys -t team -l "$1"; }
check "the teammate scenario console opens" "Clients (7/7)"

new_client "uri:urn:company:teammate" "$work/teammate/clients.toml"
git -C "$work/teammate" commit --quiet -am "teammate: a billing reader" && git -C "$work/teammate" push --quiet origin HEAD 2>/dev/null
keys +
check "the grant prompt opens (teammate scenario)" "Grant to uri:urn:company:alice"
text "billing read"
keys Enter
check "the console's edit is applied" "may read on billing (unsaved)"
keys C-s
check "ctrl-s saves (teammate scenario)" "saved "
keys 5 c Enter
check "the confirmation names the change (teammate scenario)" "Commit clients.toml"
text y
check "the commit is made (teammate scenario)" "committed "
keys p
check "the push replays the commit onto the teammate's" "replayed 1 commit(s)"
keys 1
check "the teammate's client is on the console's screen" "Clients (8/8)"
check "by name" "uri:urn:company:teammate"

keys +
text "billing write"
keys Enter
check "a second edit after the rebased push" "may write on billing (unsaved)"
keys C-s
check "ctrl-s saves again" "saved "
keys 5 c Enter
check "the second confirmation" "Commit clients.toml"
text y
check "the second commit" "committed "
keys p
check "the second push needs no rebase" "pushed 1 commit(s)"
git -C "$work/teammate" pull --quiet --ff-only origin main 2>/dev/null
# alice's billing grant carries both pushes (read, then write); the teammate's client is there.
if grep -q 'uri:urn:company:teammate' "$work/teammate/clients.toml" \
    && grep -qF '{ name = "billing", operations = ["read", "write"] }' "$work/teammate/clients.toml"; then
    echo "ok   the remote has the teammate's client and both of the console's pushes"; passed=$((passed + 1))
else
    echo "FAIL the remote lost work:"; sed 's/^/     | /' "$work/teammate/clients.toml"; failed=$((failed + 1))
fi

keys 1 +
text "archive read"
keys Enter
check "an unsaved edit" "may read on archive (unsaved)"
new_client "uri:urn:company:outsider" "$work/ws/policy/clients.toml"
check "the watcher rebases the unsaved edit onto the outside edit" "rebased 1 edit(s)"
check "the outside edit is on screen" "Clients (9/9)"
if grep -q 'uri:urn:company:outsider' "$work/ws/policy/clients.toml" && ! grep -q '"archive"' "$work/ws/policy/clients.toml"; then
    echo "ok   the outside edit was not overwritten, and nothing unsaved was written"; passed=$((passed + 1))
else
    echo "FAIL the working file:"; sed 's/^/     | /' "$work/ws/policy/clients.toml"; failed=$((failed + 1))
fi
keys C-s
check "ctrl-s writes both" "saved "
if grep -q 'uri:urn:company:outsider' "$work/ws/policy/clients.toml" && grep -q '"archive"' "$work/ws/policy/clients.toml"; then
    echo "ok   the saved file has the outside edit and the console's"; passed=$((passed + 1))
else
    echo "FAIL the saved file:"; sed 's/^/     | /' "$work/ws/policy/clients.toml"; failed=$((failed + 1))
fi
keys q
check "q quits the teammate console" "EXITED=0"

# A fleet on one machine: `demo init --replicas 3`, moved to free ports by a reviewed commit of
# fleet.toml; the console runs all three, screen 6 becomes Fleet, and a push is followed until
# every replica applied it.
free_ports() {
    python3 -c 'import socket
s=[socket.socket() for _ in range(3)]
[x.bind(("127.0.0.1",0)) for x in s]
print(" ".join(str(x.getsockname()[1]) for x in s))' 2>/dev/null \
        || { b=$((20000 + RANDOM % 30000)); echo "$b $((b + 1)) $((b + 2))"; }
}
read -r pa pb pc <<<"$(free_ports)"
"$binary" demo init "$work/fleet" --replicas 3 >/dev/null || { echo "FAIL demo init --replicas 3"; failed=$((failed + 1)); }
sed -i "s/^listen = .*/listen = \"127.0.0.1:$pa\"/" "$work/fleet/workspace.toml"
sed -i -e "s/:4443\"/:$pa\"/" -e "s/:4444\"/:$pb\"/" -e "s/:4445\"/:$pc\"/" "$work/fleet/policy/fleet.toml"
git -C "$work/fleet/policy" config user.name "E2E Operator"
git -C "$work/fleet/policy" config user.email "e2e@example.test"
git -C "$work/fleet/policy" commit --quiet -am "The demo fleet on free ports"
git -C "$work/fleet/policy" push --quiet origin main
tmx new-session -d -s fleet -x 140 -y 40 \
    "env HOME=$work/home XDG_CONFIG_HOME=$work/home/.config XDG_STATE_HOME=$work/home/.state \
     XDG_DATA_HOME=$work/home/.data $binary --workspace $work/fleet; echo EXITED=\$?; sleep 600"
screen() { tmx capture-pane -p -t fleet 2>/dev/null; }
keys() { tmx send-keys -t fleet "$@"; }
text() { tmx send-keys -t fleet -l "$1"; }
check "the fleet console opens" "Clients (7/7)"
keys 6
check "screen 6 is the Fleet: three replicas in sync" "Fleet (3/3 in sync with" 20
keys 1 +
text "staging_api delete"
keys Enter C-s
check "the edit is saved" "saved "
keys 5 c Enter
check "the fleet commit's confirmation" "Commit clients.toml"
text y
check "the fleet commit" "committed "
keys p
check "the push is followed to every replica" "all 3 replica(s) applied it" 30
keys 6
fleet_head=$(git -C "$work/fleet/policy" rev-parse HEAD | cut -c1-8)
check "every replica serves the pushed commit" "Fleet (3/3 in sync with $fleet_head)" 20
keys q
check "q quits the fleet console, replicas and all" "EXITED=0"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
