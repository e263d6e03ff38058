// Conformance check of an S2-compatible server with the official S2 TypeScript SDK.
//
//   node check.mjs <endpoint> [access-token]
//
// Points the SDK at <endpoint> the way one points it at s2-lite: S2_ACCOUNT_ENDPOINT and
// S2_BASIN_ENDPOINT set to the server's base URL, read by S2Environment.parse(). The SDK then
// talks to <endpoint>/v1 and sends the basin in the `s2-basin` header. Unary append/read/tail and
// stream management go over the JSON REST API; the read session is forced onto the fetch transport
// (SSE), since the SDK's default Node transport is the binary s2s protocol over HTTP/2.
//
// Prints one line per check and exits non-zero when any check fails.

import {
	AppendInput,
	AppendRecord,
	RangeNotSatisfiableError,
	S2,
	S2Environment,
	S2Error,
	SeqNumMismatchError,
} from "@s2-dev/streamstore";

const endpoint = process.argv[2] ?? process.env.S2_ENDPOINT;
const accessToken = process.argv[3] ?? process.env.S2_ACCESS_TOKEN ?? "sdk-check-token";
if (!endpoint) {
	console.error("usage: node check.mjs <endpoint> [access-token]");
	process.exit(2);
}

process.env.S2_ACCOUNT_ENDPOINT = endpoint;
process.env.S2_BASIN_ENDPOINT = endpoint;
process.env.S2_ACCESS_TOKEN = accessToken;

const basinName = process.env.S2_BASIN ?? "sdk-check-basin";
const streamName = `sdk-check-${Date.now()}`;
let failures = 0;
let passes = 0;

function check(name, condition, detail = "") {
	if (condition) {
		passes++;
		console.log(`ok   - ${name}`);
	} else {
		failures++;
		console.log(`FAIL - ${name}${detail ? `: ${detail}` : ""}`);
	}
}

async function expectError(name, promise, predicate) {
	try {
		const value = await promise;
		check(name, false, `expected an error, got ${JSON.stringify(value)}`);
		return undefined;
	} catch (error) {
		const ok = predicate(error);
		check(name, ok, ok ? "" : `unexpected error: ${error?.name} status=${error?.status} code=${error?.code} ${error?.message}`);
		return error;
	}
}

const show = (value) => JSON.stringify(value, (_, v) => (typeof v === "bigint" ? v.toString() : v));

async function main() {
	const s2 = new S2({ ...S2Environment.parse(), retry: { maxAttempts: 1 } });
	check("S2Environment.parse() picked up the endpoint", s2.endpoints.basinBaseUrl(basinName) === `${endpoint.replace(/\/$/, "")}/v1`,
		s2.endpoints.basinBaseUrl(basinName));
	check("the SDK sends the s2-basin header for a custom endpoint", s2.endpoints.includeBasinHeader === true);

	const basin = s2.basin(basinName);

	// ---- stream management -------------------------------------------------------------------
	const created = await basin.streams.create({ stream: streamName });
	check("create stream answers StreamInfo", created?.name === streamName && typeof created?.createdAt !== "undefined",
		show(created));

	await expectError("creating it again is 409 resource_already_exists",
		basin.streams.create({ stream: streamName }),
		(e) => e instanceof S2Error && e.status === 409 && e.code === "resource_already_exists");

	const listed = await basin.streams.list({ prefix: "sdk-check-" });
	check("list streams finds it", listed.streams.some((s) => s.name === streamName), show(listed));

	const config = await basin.streams.getConfig({ stream: streamName });
	check("get stream config answers", config !== undefined && config !== null, show(config));

	const stream = basin.stream(streamName);

	// ---- empty stream --------------------------------------------------------------------------
	const emptyTail = await stream.checkTail();
	check("check tail of a new stream is 0", emptyTail.tail.seqNum === 0, show(emptyTail));

	await expectError("reading a new stream from 0 is 416 with the tail (unary reads do not wait)",
		stream.read({ start: { from: { seqNum: 0 } }, stop: { limits: { count: 10 } } }),
		(e) => e instanceof RangeNotSatisfiableError && e.status === 416 && e.tail?.seqNum === 0);

	// ---- append ---------------------------------------------------------------------------------
	const bodies = [
		'{"capture_session_id":"s1","seq":1,"event":{"type":"console.log","data":{"message":"hi \\"there\\""}}}',
		"plain text with unicode: héllo wörld ✓ 🚀",
		"third",
	];
	const ack = await stream.append(AppendInput.create([
		AppendRecord.string({ body: bodies[0] }),
		AppendRecord.string({ body: bodies[1], headers: [["content-type", "text/plain"]] }),
		AppendRecord.string({ body: bodies[2] }),
	], { matchSeqNum: 0 }));
	check("append with match_seq_num 0 acks start 0", ack.start.seqNum === 0, show(ack));
	check("append ack end is 3 (last + 1)", ack.end.seqNum === 3, show(ack));
	check("append ack tail is 3", ack.tail.seqNum === 3, show(ack));
	check("append ack timestamps are dates", ack.start.timestamp instanceof Date && ack.end.timestamp.getTime() >= ack.start.timestamp.getTime(), show(ack));

	const mismatch = await expectError("append with a stale match_seq_num is 412 seq_num_mismatch",
		stream.append(AppendInput.create([AppendRecord.string({ body: "dup" })], { matchSeqNum: 0 })),
		(e) => e instanceof SeqNumMismatchError && e.status === 412);
	check("the 412 names the expected seq_num 3", mismatch?.expectedSeqNum === 3, `expectedSeqNum=${mismatch?.expectedSeqNum}`);

	// ---- read -----------------------------------------------------------------------------------
	const all = await stream.read({ start: { from: { seqNum: 0 } }, stop: { limits: { count: 10 } } });
	check("read from 0 returns the 3 records", all.records.length === 3, show(all));
	check("read bodies round-trip exactly", all.records.every((r, i) => r.body === bodies[i]), show(all.records.map((r) => r.body)));
	check("read seq_nums are 0,1,2", all.records.map((r) => r.seqNum).join(",") === "0,1,2");
	check("read headers round-trip", all.records[1]?.headers?.length === 1 && all.records[1].headers[0][0] === "content-type" && all.records[1].headers[0][1] === "text/plain",
		show(all.records[1]?.headers));
	check("read timestamps match the ack", all.records[0]?.timestamp.getTime() === ack.start.timestamp.getTime());

	const limited = await stream.read({ start: { from: { seqNum: 1 } }, stop: { limits: { count: 1 } } });
	check("read with count 1 from seq_num 1 returns record 1", limited.records.length === 1 && limited.records[0].seqNum === 1, show(limited));

	const fromTail = await stream.read({ start: { from: { tailOffset: 1 } }, stop: { limits: { count: 10 } } });
	check("read from tail_offset 1 returns the last record", fromTail.records.length === 1 && fromTail.records[0].body === bodies[2], show(fromTail));

	const fromTs = await stream.read({ start: { from: { timestamp: all.records[0].timestamp } }, stop: { limits: { count: 10 } } });
	check("read from the first timestamp returns all records", fromTs.records.length === 3, show(fromTs));

	const byBytes = await stream.read({ start: { from: { seqNum: 0 } }, stop: { limits: { bytes: 8 + Buffer.byteLength(bodies[0]) } } });
	check("read with a bytes limit of one metered record returns one", byBytes.records.length === 1, show(byBytes));

	const beyond = await expectError("reading beyond the tail is 416",
		stream.read({ start: { from: { seqNum: 99 } }, stop: { limits: { count: 10 } } }),
		(e) => e instanceof RangeNotSatisfiableError && e.status === 416);
	check("the 416 carries tail 3", beyond?.tail?.seqNum === 3, show(beyond?.tail));

	const clamped = await stream.read({ start: { from: { seqNum: 99 }, clamp: true }, stop: { waitSecs: 1 } });
	check("clamped read beyond the tail with wait answers an empty batch", clamped.records.length === 0, show(clamped));

	const tail = await stream.checkTail();
	check("check tail after the append is 3", tail.tail.seqNum === 3, show(tail));

	// ---- read session (SSE over fetch) -----------------------------------------------------------
	const sseStream = basin.stream(streamName, { forceTransport: "fetch" });
	const session = await sseStream.readSession({ start: { from: { seqNum: 0 } }, stop: { limits: { count: 3 } } });
	const seen = [];
	for await (const record of session) {
		seen.push(record);
		if (seen.length >= 3) break;
	}
	check("SSE read session returns the 3 records", seen.length === 3 && seen.every((r, i) => r.body === bodies[i] && r.seqNum === i),
		show(seen.map((r) => [r.seqNum, r.body])));

	// ---- append session over fetch (sequential unary appends) ----------------------------------
	const appendSession = await sseStream.appendSession();
	const ticket = await appendSession.submit(AppendInput.create([AppendRecord.string({ body: "fourth" })]));
	const sessionAck = await ticket.ack();
	await appendSession.close();
	check("append session acks seq_num 3", sessionAck.start.seqNum === 3 && sessionAck.end.seqNum === 4, show(sessionAck));
	await sseStream.close();

	// ---- errors ---------------------------------------------------------------------------------
	await expectError("check tail of a missing stream is 404 stream_not_found",
		basin.stream(`${streamName}-missing`).checkTail(),
		(e) => e instanceof S2Error && e.status === 404 && e.code === "stream_not_found");

	await expectError("append to a missing stream is 404 stream_not_found",
		basin.stream(`${streamName}-missing`).append(AppendInput.create([AppendRecord.string({ body: "x" })])),
		(e) => e instanceof S2Error && e.status === 404 && e.code === "stream_not_found");

	const intruder = new S2({ ...S2Environment.parse(), accessToken: `${accessToken}-wrong`, retry: { maxAttempts: 1 } });
	await expectError("a wrong access token is refused (403 permission_denied)",
		intruder.basin(basinName).stream(streamName).checkTail(),
		(e) => e instanceof S2Error && e.status === 403);

	await basin.streams.delete({ stream: streamName });
	await expectError("a deleted stream is gone",
		stream.checkTail(),
		(e) => e instanceof S2Error && e.status === 404);
}

try {
	await main();
} catch (error) {
	failures++;
	console.log(`FAIL - unexpected error: ${error?.name} status=${error?.status} code=${error?.code} ${error?.message}`);
	if (error?.stack) console.log(error.stack);
}

console.log(`${passes} passed, ${failures} failed (endpoint ${endpoint}, basin ${basinName}, stream ${streamName})`);
process.exit(failures === 0 ? 0 : 1);
