/** The text of `interprocess --help` and of each command's `--help`; each ends with examples that a test parses and runs. */
import { ADDRESS_HELP } from './address.js';

const FRAMING_HELP = `  --framing line|raw
                 how messages meet stdin and stdout (message addresses: dgram:, seqpacket:,
                 msgpipe:). line, the default: one message per line. Written out, a message is
                 its bytes and a newline, with \\ written \\\\, newline \\n, carriage return \\r, and
                 any other control byte (but tab) or byte that is not UTF-8 written \\xHH, so text
                 reads as itself and any bytes survive. Read in, each line of stdin is a message,
                 those escapes decoded (a CRLF line end is a line end); a line is at most 256 KiB.
                 raw: each read of stdin is a message (up to 8 KiB, 2 KiB on macOS), and the
                 messages are written out with nothing between them.`;

const LINGER_HELP = `  --linger MS    once the peer has ended, how long stdin may be idle before our side ends and
                 the command exits (default 500, as socat's -t, which takes seconds)`;

export const HELP: Record<string, string> = {
  main: `Usage: interprocess <command> [options]

Commands:
  info                 what this platform supports, and whether the native addon loaded
  listen ADDRESS       wait for one peer, then copy stdin to it and it to stdout
  connect ADDRESS      connect to a peer, then copy stdin to it and it to stdout
  bench                run the benchmarks (from a source checkout)

Options:
  --version      print the version of interprocess
  --help         this text; 'interprocess <command> --help' for a command's options

Exit codes: 0 done, 1 failure (the message says what and why), 2 bad usage.

${ADDRESS_HELP}

Examples:
  interprocess --version
  interprocess info`,
  info: `Usage: interprocess info [--json]

Prints the platform, the local socket name kinds, the native addon's status, and which signals
can be caught here.

  --json         the same as JSON

Examples:
  interprocess info
  interprocess info --json`,
  listen: `Usage: interprocess listen ADDRESS [--mode OCTAL] [--linger MS] [--framing line|raw]

Local socket, seqpacket, named pipe: listens, takes the first connection, stops listening, then
copies stdin to the peer and the peer to stdout, and exits when both directions are done. At the
end of stdin our side ends, and the peer is still read to its end. Once the peer has ended,
stdin goes on while it keeps coming (a file is sent whole), but once it has been idle for
--linger MS (0.5 s), our side ends anyway and the command exits, as socat's -t: a terminal's
stdin does not keep it running. FIFO: creates it if missing (mode default 600), copies what
writers send to stdout until the last writer closes. dgram: binds there and writes out each
datagram received, one per line (see --framing), until interrupted (Ctrl-C or SIGTERM; the
socket file is removed).

  --mode OCTAL   permissions of the socket file or FIFO, e.g. 600
${LINGER_HELP}
${FRAMING_HELP}

${ADDRESS_HELP}

Examples:
  interprocess listen @my-app > received.bin           # one peer's bytes into a file
  interprocess listen /tmp/my-app.sock --mode 600      # a socket file only its owner can use
  interprocess listen fifo:/tmp/my-app.fifo            # what writers write, until the last closes
  interprocess listen dgram:/tmp/my-log.sock           # each datagram received, one per line
  interprocess listen seqpacket:@my-app --framing raw > received.bin`,
  connect: `Usage: interprocess connect ADDRESS [--wait] [--timeout MS] [--linger MS] [--framing line|raw]

Local socket, seqpacket, named pipe: connects, copies stdin to the peer and the peer to stdout,
and exits when both directions are done. At the end of stdin our side ends, and the peer's
answer is still read to its end, however long it takes. Once the peer has ended, stdin goes on
while it keeps coming, and ends after --linger MS (0.5 s) idle, as for listen. FIFO: opens it
for writing and copies stdin into it. dgram: sends stdin as datagrams (one per line, see
--framing) to the socket bound there, and exits at the end of stdin; it receives no replies.

  --wait         keep trying until a listener (FIFO reader, bound datagram socket) appears
  --timeout MS   give up after MS milliseconds
${LINGER_HELP}
${FRAMING_HELP}

${ADDRESS_HELP}

Examples:
  interprocess connect @my-app --wait < file.bin       # a file to whoever listens there
  echo hello | interprocess connect dgram:/tmp/my-log.sock
  interprocess connect seqpacket:@my-app --wait --timeout 5000 --framing raw < file.bin
  interprocess connect fifo:/tmp/my-app.fifo --wait < file.bin`,
  bench: `Usage: interprocess bench [--quick] [--only TEXT] [--json FILE] [--svg FILE]

Runs the benchmark rows on this machine with a progress bar and prints the table. Needs a source
checkout of interprocess (the published package does not ship the benchmarks).

  --quick        short runs, a smoke check
  --only TEXT    only rows whose id contains TEXT
  --json FILE    also write the results as JSON
  --svg FILE     also write a chart of interprocess against Node core as SVG

Examples:
  interprocess bench --quick --only local-socket
  interprocess bench --json out.json --svg chart.svg`,
};
