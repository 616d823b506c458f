package interop;

import static interop.Main.check;
import static interop.Main.say;

import com.amazonaws.auth.AWSStaticCredentialsProvider;
import com.amazonaws.auth.BasicAWSCredentials;
import com.amazonaws.services.kinesis.producer.KinesisProducer;
import com.amazonaws.services.kinesis.producer.KinesisProducerConfiguration;
import com.amazonaws.services.kinesis.producer.UserRecordResult;
import com.google.common.util.concurrent.ListenableFuture;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The Java KPL (its native producer binary) puts user records to the broker over TLS with
 * aggregation on and metrics off.
 *
 * <p>Arguments: {@code <host> <port> <stream> <keys> <records per key>}. The record for key
 * {@code k} number {@code i} has partition key {@code key-k} and data {@code key-k:i}; they are
 * added in round-robin order. Prints {@code REC <data> <shardId> <sequenceNumber>} for each.
 */
final class KplDriver {
    private KplDriver() {}

    static void run(String[] args) throws Exception {
        String host = args[0];
        long port = Long.parseLong(args[1]);
        String stream = args[2];
        int keys = Integer.parseInt(args[3]);
        int perKey = Integer.parseInt(args[4]);

        KinesisProducerConfiguration config = new KinesisProducerConfiguration()
                .setRegion("us-east-1")
                .setKinesisEndpoint(host)
                .setKinesisPort(port)
                // Nothing may leave the machine: CloudWatch and STS point at the broker too.
                .setCloudwatchEndpoint(host)
                .setCloudwatchPort(port)
                .setStsEndpoint(host)
                .setStsPort(port)
                .setVerifyCertificate(false)
                .setMetricsLevel("none")
                .setAggregationEnabled(true)
                .setRecordMaxBufferedTime(100)
                .setLogLevel(System.getProperty("kpl.log", "warning"))
                .setCredentialsProvider(new AWSStaticCredentialsProvider(
                        new BasicAWSCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")));
        KinesisProducer producer = new KinesisProducer(config);
        // Until its shard map is loaded the KPL neither aggregates nor keeps a key's records in
        // order; one record put and confirmed first waits for the map.
        UserRecordResult warm = producer.addUserRecord(stream, "warm-up",
                ByteBuffer.wrap("warm-up".getBytes(StandardCharsets.UTF_8))).get(60, TimeUnit.SECONDS);
        check(warm.isSuccessful(), "warm-up record failed");
        say("REC warm-up " + warm.getShardId() + " " + warm.getSequenceNumber() + " 1 []");
        List<String> data = new ArrayList<>();
        List<ListenableFuture<UserRecordResult>> futures = new ArrayList<>();
        for (int i = 0; i < perKey; i++) {
            for (int k = 0; k < keys; k++) {
                String pk = "key-" + k;
                String d = pk + ":" + i;
                data.add(d);
                futures.add(producer.addUserRecord(stream, pk,
                        ByteBuffer.wrap(d.getBytes(StandardCharsets.UTF_8))));
            }
        }
        for (int i = 0; i < futures.size(); i++) {
            UserRecordResult r = futures.get(i).get(60, TimeUnit.SECONDS);
            check(r.isSuccessful(), "record " + data.get(i) + " failed: " + r.getAttempts().stream()
                    .map(a -> a.getErrorCode() + " " + a.getErrorMessage()).toList());
            say("REC " + data.get(i) + " " + r.getShardId() + " " + r.getSequenceNumber() + " " + r.getAttempts().size() + " " + r.getAttempts().stream().map(a -> a.getErrorCode()).toList().toString().replace(" ", ""));
        }
        producer.flushSync();
        producer.destroy();
        say("KPL OK");
    }
}
