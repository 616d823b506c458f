package interop;

import java.io.FileInputStream;
import java.io.InputStream;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.time.Duration;
import javax.net.ssl.TrustManagerFactory;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.http.TlsTrustManagersProvider;
import software.amazon.awssdk.http.async.SdkAsyncHttpClient;
import software.amazon.awssdk.http.nio.netty.NettyNioAsyncHttpClient;

/** Client settings every driver shares: test credentials and trust in the broker's certificate. */
final class Tls {
    private Tls() {}

    static final StaticCredentialsProvider CREDENTIALS = StaticCredentialsProvider.create(
            AwsBasicCredentials.create("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"));

    /** Trust exactly the PEM certificate at {@code path} (the broker's --tls-cert). */
    static TlsTrustManagersProvider trusting(String path) throws Exception {
        CertificateFactory cf = CertificateFactory.getInstance("X.509");
        KeyStore ks = KeyStore.getInstance(KeyStore.getDefaultType());
        ks.load(null, null);
        try (InputStream in = new FileInputStream(path)) {
            int i = 0;
            for (Certificate c : cf.generateCertificates(in)) {
                ks.setCertificateEntry("broker-" + i++, c);
            }
        }
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(ks);
        return tmf::getTrustManagers;
    }

    /** A Netty client (HTTP/2 for Kinesis) trusting {@code certPath} when it is not null. */
    static SdkAsyncHttpClient netty(String certPath) throws Exception {
        NettyNioAsyncHttpClient.Builder b = NettyNioAsyncHttpClient.builder()
                .connectionAcquisitionTimeout(Duration.ofSeconds(30));
        if (certPath != null) {
            b.tlsTrustManagersProvider(trusting(certPath));
        }
        return b.build();
    }
}
