package interop;

import static interop.Main.say;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.URI;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.cloudwatch.CloudWatchAsyncClient;
import software.amazon.awssdk.services.dynamodb.DynamoDbAsyncClient;
import software.amazon.awssdk.services.kinesis.KinesisAsyncClient;
import software.amazon.kinesis.common.ConfigsBuilder;
import software.amazon.kinesis.common.InitialPositionInStream;
import software.amazon.kinesis.common.InitialPositionInStreamExtended;
import software.amazon.kinesis.coordinator.CoordinatorConfig;
import software.amazon.kinesis.coordinator.Scheduler;
import software.amazon.kinesis.leases.LeaseManagementConfig;
import software.amazon.kinesis.lifecycle.events.InitializationInput;
import software.amazon.kinesis.lifecycle.events.LeaseLostInput;
import software.amazon.kinesis.lifecycle.events.ProcessRecordsInput;
import software.amazon.kinesis.lifecycle.events.ShardEndedInput;
import software.amazon.kinesis.lifecycle.events.ShutdownRequestedInput;
import software.amazon.kinesis.metrics.MetricsLevel;
import software.amazon.kinesis.processor.ShardRecordProcessor;
import software.amazon.kinesis.retrieval.KinesisClientRecord;
import software.amazon.kinesis.retrieval.RetrievalConfig;
import software.amazon.kinesis.retrieval.polling.PollingConfig;

/**
 * Java KCL 3.x workers consuming from the broker, their lease, coordinator-state and
 * worker-metrics tables in a local DynamoDB, metrics off.
 *
 * <p>The lease table must exist with its {@code LeaseOwnerToLeaseKeyIndex}: dynalite ignores the
 * KCL's own UpdateTable that would add the index (the tests create the table with kcl).
 *
 * <p>Arguments: {@code <kinesis endpoint> <cert.pem or -> <dynamodb endpoint>} then one or more
 * worker specs {@code <app>,<stream>,<worker id>,<polling|fanout>,<v3|v2>} ({@code v2}: the
 * KCL's 2.x-compatible mode), all run in this JVM. Each processor prints {@code INIT <app>
 * <shard> <checkpoint>}, {@code REC <app> <shard> <seq> <subseq> <pk> <data>} per record (then
 * checkpoints the batch), {@code END <app> <shard>} once it checkpointed a shard's end, and
 * {@code LOST <app> <shard>}. Runs until its standard input closes, then shuts down gracefully
 * and prints {@code STOPPED}.
 */
final class KclDriver {
    private KclDriver() {}

    static void run(String[] args) throws Exception {
        URI kinesisEndpoint = URI.create(args[0]);
        String cert = args[1].equals("-") ? null : args[1];
        URI dynamoEndpoint = URI.create(args[2]);
        KinesisAsyncClient kinesis = KinesisAsyncClient.builder()
                .endpointOverride(kinesisEndpoint)
                .region(Region.US_EAST_1)
                .credentialsProvider(Tls.CREDENTIALS)
                .httpClient(Tls.netty(cert))
                .build();
        DynamoDbAsyncClient dynamo = DynamoDbAsyncClient.builder()
                .endpointOverride(dynamoEndpoint)
                .region(Region.US_EAST_1)
                .credentialsProvider(Tls.CREDENTIALS)
                .build();
        // Metrics are off; the client only has to exist, and points nowhere but here.
        CloudWatchAsyncClient cloudWatch = CloudWatchAsyncClient.builder()
                .endpointOverride(dynamoEndpoint)
                .region(Region.US_EAST_1)
                .credentialsProvider(Tls.CREDENTIALS)
                .build();

        List<Scheduler> schedulers = new ArrayList<>();
        for (int i = 3; i < args.length; i++) {
            String[] spec = args[i].split(",");
            String app = spec[0], stream = spec[1], worker = spec[2];
            boolean fanOut = spec[3].equals("fanout");
            boolean v2 = spec[4].equals("v2");
            ConfigsBuilder cb = new ConfigsBuilder(stream, app, kinesis, dynamo, cloudWatch, worker,
                    () -> new Printer(app));
            RetrievalConfig retrieval = cb.retrievalConfig()
                    .initialPositionInStreamExtended(InitialPositionInStreamExtended
                            .newInitialPosition(InitialPositionInStream.TRIM_HORIZON));
            if (!fanOut) {
                retrieval.retrievalSpecificConfig(new PollingConfig(stream, kinesis)
                        .idleTimeBetweenReadsInMillis(200));
            }
            CoordinatorConfig coordinator = cb.coordinatorConfig()
                    .parentShardPollIntervalMillis(200);
            if (v2) {
                coordinator.clientVersionConfig(
                        CoordinatorConfig.ClientVersionConfig.CLIENT_VERSION_CONFIG_COMPATIBLE_WITH_2X);
            }
            LeaseManagementConfig leases = cb.leaseManagementConfig()
                    .failoverTimeMillis(3000)
                    .shardSyncIntervalMillis(1000)
                    // The leader assigns leases once workers have reported their metrics
                    // (every 30 s by default): report and assign every second instead.
                    .leaseAssignmentIntervalMillis(1000L)
                    // After a split the KPL re-puts the user records of an aggregate that
                    // landed in the other child; the KCL drops the stray copies only if its
                    // shard cache already knows the child's hash range. Reload on a miss.
                    .listShardsCacheAllowedAgeInSeconds(0)
                    // A stopping worker hands its leases over within a second, not thirty.
                    .gracefulLeaseHandoffConfig(LeaseManagementConfig.GracefulLeaseHandoffConfig.builder()
                            .gracefulLeaseHandoffTimeoutMillis(1000)
                            .build());
            leases.workerUtilizationAwareAssignmentConfig()
                    .workerMetricsReporterFreqInMillis(1000)
                    .inMemoryWorkerMetricsCaptureFrequencyMillis(250)
                    // Balance by lease throughput, as kcl workers (which report no CPU) are:
                    // otherwise the worker reports CPU on EC2, ECS or EKS hosts (and probes the
                    // instance metadata for it first), and a leader balances each metric only
                    // among the workers reporting it, so a mixed fleet would depend on the host.
                    .disableWorkerMetrics(true);
            Scheduler scheduler = new Scheduler(
                    cb.checkpointConfig(),
                    coordinator,
                    leases,
                    cb.lifecycleConfig(),
                    cb.metricsConfig().metricsLevel(MetricsLevel.NONE),
                    cb.processorConfig(),
                    retrieval);
            Thread t = new Thread(scheduler, "scheduler-" + app);
            t.setDaemon(true);
            t.start();
            schedulers.add(scheduler);
        }

        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        while (in.readLine() != null) {
            // Only the end of input matters.
        }
        List<java.util.concurrent.Future<Boolean>> stopping = new ArrayList<>();
        for (Scheduler s : schedulers) {
            stopping.add(s.startGracefulShutdown());
        }
        for (java.util.concurrent.Future<Boolean> f : stopping) {
            f.get(60, TimeUnit.SECONDS);
        }
        say("STOPPED");
    }

    /** Prints what it is given and checkpoints after every batch and at a shard's end. */
    static final class Printer implements ShardRecordProcessor {
        private final String app;
        private String shard;

        Printer(String app) {
            this.app = app;
        }

        @Override
        public void initialize(InitializationInput in) {
            shard = in.shardId();
            say("INIT " + app + " " + shard + " " + in.extendedSequenceNumber());
        }

        @Override
        public void processRecords(ProcessRecordsInput in) {
            StringBuilder lines = new StringBuilder();
            for (KinesisClientRecord r : in.records()) {
                byte[] data = new byte[r.data().remaining()];
                r.data().get(data);
                lines.append("REC ").append(app).append(' ').append(shard).append(' ')
                        .append(r.sequenceNumber()).append(' ').append(r.subSequenceNumber()).append(' ')
                        .append(r.partitionKey()).append(' ')
                        .append(new String(data, java.nio.charset.StandardCharsets.UTF_8)).append('\n');
            }
            if (lines.length() > 0) {
                lines.setLength(lines.length() - 1);
                say(lines.toString());
            }
            try {
                in.checkpointer().checkpoint();
            } catch (Exception e) {
                say("CHECKPOINT-FAILED " + app + " " + shard + " " + e);
            }
        }

        @Override
        public void leaseLost(LeaseLostInput in) {
            say("LOST " + app + " " + shard);
        }

        @Override
        public void shardEnded(ShardEndedInput in) {
            try {
                in.checkpointer().checkpoint();
                say("END " + app + " " + shard);
            } catch (Exception e) {
                say("CHECKPOINT-FAILED " + app + " " + shard + " " + e);
            }
        }

        @Override
        public void shutdownRequested(ShutdownRequestedInput in) {
            try {
                in.checkpointer().checkpoint();
            } catch (Exception e) {
                say("CHECKPOINT-FAILED " + app + " " + shard + " " + e);
            }
        }
    }
}
