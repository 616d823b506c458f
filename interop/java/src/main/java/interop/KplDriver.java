package interop;
final class KplDriver { static void run(String[] a) {} }
