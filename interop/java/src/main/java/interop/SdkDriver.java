package interop;

import static interop.Main.check;
import static interop.Main.say;

import java.math.BigInteger;
import java.net.URI;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.reactivestreams.Subscriber;
import org.reactivestreams.Subscription;
import software.amazon.awssdk.core.SdkBytes;
import software.amazon.awssdk.core.interceptor.Context;
import software.amazon.awssdk.core.interceptor.ExecutionAttributes;
import software.amazon.awssdk.core.interceptor.ExecutionInterceptor;
import software.amazon.awssdk.core.interceptor.SdkExecutionAttribute;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.kinesis.KinesisAsyncClient;
import software.amazon.awssdk.services.kinesis.model.ConsumerStatus;
import software.amazon.awssdk.services.kinesis.model.GetRecordsResponse;
import software.amazon.awssdk.services.kinesis.model.PutRecordResponse;
import software.amazon.awssdk.services.kinesis.model.PutRecordsRequestEntry;
import software.amazon.awssdk.services.kinesis.model.PutRecordsResponse;
import software.amazon.awssdk.services.kinesis.model.Record;
import software.amazon.awssdk.services.kinesis.model.Shard;
import software.amazon.awssdk.services.kinesis.model.ShardIteratorType;
import software.amazon.awssdk.services.kinesis.model.StartingPosition;
import software.amazon.awssdk.services.kinesis.model.StreamStatus;
import software.amazon.awssdk.services.kinesis.model.SubscribeToShardEvent;
import software.amazon.awssdk.services.kinesis.model.SubscribeToShardEventStream;
import software.amazon.awssdk.services.kinesis.model.SubscribeToShardResponseHandler;

/**
 * The AWS SDK for Java v2 with its defaults (CBOR bodies, Netty, HTTP/2) runs every data and
 * control operation the toolkit's broker serves, checking each answer.
 *
 * <p>Arguments: pairs of {@code <endpoint> <cert.pem or ->} followed by a stream-name prefix. Each
 * endpoint gets its own stream. Prints {@code STEP <name>} after each check and {@code SDK OK
 * <endpoint>} when an endpoint passed everything.
 */
final class SdkDriver {
    private SdkDriver() {}

    static void run(String[] args) throws Exception {
        String prefix = args[args.length - 1];
        for (int i = 0; i + 1 < args.length - 1; i += 2) {
            String endpoint = args[i];
            String cert = args[i + 1].equals("-") ? null : args[i + 1];
            try (KinesisAsyncClient client = KinesisAsyncClient.builder()
                    .overrideConfiguration(o -> o.addExecutionInterceptor(CBOR))
                    .endpointOverride(URI.create(endpoint))
                    .region(Region.US_EAST_1)
                    .credentialsProvider(Tls.CREDENTIALS)
                    .httpClient(Tls.netty(cert))
                    .build()) {
                new SdkDriver.Scenario(client, prefix + "-" + (i / 2)).run();
            }
            say("SDK OK " + endpoint);
        }
        say("CBOR " + CBOR.cbor.get() + " OTHER " + CBOR.other.get());
    }

    /**
     * Counts the requests sent with a CBOR body (the SDK's default protocol for Kinesis) and
     * names the others.
     */
    static final class ContentTypes implements ExecutionInterceptor {
        final AtomicInteger cbor = new AtomicInteger();
        final AtomicInteger other = new AtomicInteger();

        @Override
        public void beforeTransmission(Context.BeforeTransmission context, ExecutionAttributes attributes) {
            String type = context.httpRequest().firstMatchingHeader("Content-Type").orElse("none");
            if (type.startsWith("application/x-amz-cbor-1.1")) {
                cbor.incrementAndGet();
            } else {
                other.incrementAndGet();
                say("CONTENT-TYPE " + attributes.getAttribute(SdkExecutionAttribute.OPERATION_NAME)
                        + " " + type.replace(' ', '_'));
            }
        }
    }

    private static final ContentTypes CBOR = new ContentTypes();

    private static final class Scenario {
        final KinesisAsyncClient k;
        final String stream;
        final Map<String, String> shardOf = new HashMap<>();
        final List<String> data = new ArrayList<>();

        Scenario(KinesisAsyncClient k, String stream) {
            this.k = k;
            this.stream = stream;
        }

        void run() throws Exception {
            Instant before = Instant.now().minusSeconds(1);
            k.createStream(b -> b.streamName(stream).shardCount(2)).join();
            waitActive();
            say("STEP CreateStream");

            PutRecordResponse one = k.putRecord(b -> b.streamName(stream).partitionKey("pk-first")
                    .data(SdkBytes.fromUtf8String("r0"))).join();
            check(one.sequenceNumber() != null && one.shardId() != null, "PutRecord answer " + one);
            data.add("r0");
            shardOf.put("r0", one.shardId());
            say("STEP PutRecord");

            put(1, 30);
            say("STEP PutRecords");

            List<Shard> shards = k.listShards(b -> b.streamName(stream)).join().shards();
            check(shards.size() == 2, "ListShards gave " + shards);
            say("STEP ListShards");

            String s0 = one.shardId();
            List<Record> th = get(s0, b -> b.shardIteratorType(ShardIteratorType.TRIM_HORIZON));
            check(!th.isEmpty() && th.get(0).data().asUtf8String().equals("r0"), "TRIM_HORIZON " + th);
            Instant arrival = th.get(0).approximateArrivalTimestamp();
            check(arrival != null && !arrival.isBefore(before)
                    && arrival.isBefore(Instant.now().plusSeconds(5)), "ApproximateArrivalTimestamp " + arrival);
            List<Record> at = get(s0, b -> b.shardIteratorType(ShardIteratorType.AT_SEQUENCE_NUMBER)
                    .startingSequenceNumber(one.sequenceNumber()));
            check(at.get(0).sequenceNumber().equals(one.sequenceNumber()), "AT_SEQUENCE_NUMBER " + at);
            List<Record> after = get(s0, b -> b.shardIteratorType(ShardIteratorType.AFTER_SEQUENCE_NUMBER)
                    .startingSequenceNumber(one.sequenceNumber()));
            check(after.size() == th.size() - 1 && (after.isEmpty()
                    || after.get(0).sequenceNumber().equals(th.get(1).sequenceNumber())), "AFTER_SEQUENCE_NUMBER " + after);
            List<Record> ts = get(s0, b -> b.shardIteratorType(ShardIteratorType.AT_TIMESTAMP).timestamp(before));
            check(ts.size() == th.size(), "AT_TIMESTAMP before the first record " + ts.size() + " vs " + th.size());
            Instant afterPuts = Instant.now();
            List<Record> tsLate = get(s0, b -> b.shardIteratorType(ShardIteratorType.AT_TIMESTAMP)
                    .timestamp(afterPuts));
            check(tsLate.isEmpty(), "AT_TIMESTAMP after the last put " + tsLate);
            List<Record> latest = get(s0, b -> b.shardIteratorType(ShardIteratorType.LATEST));
            check(latest.isEmpty(), "LATEST " + latest);
            say("STEP GetShardIterator");

            Set<String> seen = new HashSet<>();
            for (Shard s : shards) {
                for (Record r : get(s.shardId(), b -> b.shardIteratorType(ShardIteratorType.TRIM_HORIZON))) {
                    check(seen.add(r.data().asUtf8String()), "duplicate " + r);
                    check(shardOf.get(r.data().asUtf8String()).equals(s.shardId()), "wrong shard " + r);
                }
            }
            check(seen.equals(new HashSet<>(data)), "GetRecords saw " + seen.size() + " of " + data.size());
            say("STEP GetRecords");

            String streamArn = k.describeStreamSummary(b -> b.streamName(stream)).join()
                    .streamDescriptionSummary().streamARN();
            String consumerArn = k.registerStreamConsumer(b -> b.streamARN(streamArn).consumerName("java"))
                    .join().consumer().consumerARN();
            for (int i = 0; ; i++) {
                ConsumerStatus st = k.describeStreamConsumer(b -> b.consumerARN(consumerArn)).join()
                        .consumerDescription().consumerStatus();
                if (st == ConsumerStatus.ACTIVE) break;
                check(i < 200, "consumer never ACTIVE");
                Thread.sleep(50);
            }
            say("STEP RegisterStreamConsumer");

            Map<String, String> continuation = new HashMap<>();
            for (Shard s : shards) {
                List<String> want = expected(s.shardId(), 0);
                Subscribed got = subscribe(consumerArn, s.shardId(),
                        StartingPosition.builder().type(ShardIteratorType.TRIM_HORIZON).build(), want.size());
                check(got.data.equals(want), "SubscribeToShard " + s.shardId() + " got " + got.data + " want " + want);
                continuation.put(s.shardId(), got.continuation);
            }
            say("STEP SubscribeToShard");

            int mark = data.size();
            put(31, 50);
            // The service allows one SubscribeToShard per consumer and shard a second.
            Thread.sleep(1100);
            for (Shard s : shards) {
                List<String> want = expected(s.shardId(), mark);
                Subscribed got = subscribe(consumerArn, s.shardId(), StartingPosition.builder()
                        .type(ShardIteratorType.AFTER_SEQUENCE_NUMBER)
                        .sequenceNumber(continuation.get(s.shardId())).build(), want.size());
                check(got.data.equals(want), "resubscribe " + s.shardId() + " got " + got.data + " want " + want);
            }
            say("STEP Resubscribe");

            Shard parent = shards.get(0);
            BigInteger lo = new BigInteger(parent.hashKeyRange().startingHashKey());
            BigInteger hi = new BigInteger(parent.hashKeyRange().endingHashKey());
            String mid = lo.add(hi).shiftRight(1).toString();
            k.splitShard(b -> b.streamName(stream).shardToSplit(parent.shardId()).newStartingHashKey(mid)).join();
            waitActive();
            List<Shard> afterSplit = k.listShards(b -> b.streamName(stream)).join().shards();
            List<Shard> children = new ArrayList<>();
            for (Shard s : afterSplit) {
                if (parent.shardId().equals(s.parentShardId())) children.add(s);
            }
            check(afterSplit.size() == 4 && children.size() == 2, "after SplitShard " + afterSplit);
            say("STEP SplitShard");

            k.mergeShards(b -> b.streamName(stream).shardToMerge(children.get(0).shardId())
                    .adjacentShardToMerge(children.get(1).shardId())).join();
            waitActive();
            List<Shard> afterMerge = k.listShards(b -> b.streamName(stream)).join().shards();
            boolean merged = afterMerge.stream().anyMatch(s -> s.adjacentParentShardId() != null);
            check(afterMerge.size() == 5 && merged, "after MergeShards " + afterMerge);
            say("STEP MergeShards");
        }

        void put(int from, int to) {
            List<PutRecordsRequestEntry> entries = new ArrayList<>();
            for (int i = from; i <= to; i++) {
                entries.add(PutRecordsRequestEntry.builder().partitionKey("pk-" + i)
                        .data(SdkBytes.fromUtf8String("r" + i)).build());
            }
            PutRecordsResponse resp = k.putRecords(b -> b.streamName(stream).records(entries)).join();
            check(resp.failedRecordCount() == 0, "PutRecords failed " + resp);
            for (int i = 0; i < entries.size(); i++) {
                String d = entries.get(i).data().asUtf8String();
                data.add(d);
                shardOf.put(d, resp.records().get(i).shardId());
            }
        }

        /** The data put to {@code shard}, in put order, from index {@code from} on. */
        List<String> expected(String shard, int from) {
            List<String> out = new ArrayList<>();
            for (String d : data.subList(from, data.size())) {
                if (shardOf.get(d).equals(shard)) out.add(d);
            }
            return out;
        }

        List<Record> get(String shard,
                java.util.function.Consumer<software.amazon.awssdk.services.kinesis.model.GetShardIteratorRequest.Builder> how) {
            String it = k.getShardIterator(b -> {
                b.streamName(stream).shardId(shard);
                how.accept(b);
            }).join().shardIterator();
            List<Record> out = new ArrayList<>();
            for (int i = 0; i < 5 && it != null; i++) {
                final String cur = it;
                GetRecordsResponse r = k.getRecords(b -> b.shardIterator(cur)).join();
                out.addAll(r.records());
                it = r.nextShardIterator();
                if (r.millisBehindLatest() == 0) break;
            }
            return out;
        }

        void waitActive() throws InterruptedException {
            for (int i = 0; ; i++) {
                StreamStatus st = k.describeStreamSummary(b -> b.streamName(stream)).join()
                        .streamDescriptionSummary().streamStatus();
                if (st == StreamStatus.ACTIVE) return;
                check(i < 200, "stream never ACTIVE");
                Thread.sleep(50);
            }
        }

        record Subscribed(List<String> data, String continuation) {}

        /** Subscribe and take events until {@code want} records arrived; then cancel. */
        Subscribed subscribe(String consumerArn, String shard, StartingPosition start, int want) throws Exception {
            List<String> got = new ArrayList<>();
            String[] cont = new String[1];
            CompletableFuture<Void> done = new CompletableFuture<>();
            Subscriber<SubscribeToShardEventStream> sub = new Subscriber<>() {
                Subscription s;

                public void onSubscribe(Subscription s) {
                    this.s = s;
                    s.request(1);
                }

                public void onNext(SubscribeToShardEventStream ev) {
                    if (ev instanceof SubscribeToShardEvent e) {
                        for (Record r : e.records()) got.add(r.data().asUtf8String());
                        cont[0] = e.continuationSequenceNumber();
                        check(e.millisBehindLatest() != null, "MillisBehindLatest missing");
                    }
                    if (got.size() >= want) {
                        s.cancel();
                        done.complete(null);
                    } else {
                        s.request(1);
                    }
                }

                public void onError(Throwable t) {
                    done.completeExceptionally(t);
                }

                public void onComplete() {
                    done.complete(null);
                }
            };
            CompletableFuture<Void> call = k.subscribeToShard(b -> b.consumerARN(consumerArn).shardId(shard)
                    .startingPosition(start), SubscribeToShardResponseHandler.builder()
                    .onError(done::completeExceptionally)
                    .onEventStream(p -> p.subscribe(sub)).build());
            call.whenComplete((v, t) -> {
                if (t != null) done.completeExceptionally(t);
            });
            done.get(30, TimeUnit.SECONDS);
            check(cont[0] != null, "no ContinuationSequenceNumber");
            return new Subscribed(got, cont[0]);
        }
    }
}
