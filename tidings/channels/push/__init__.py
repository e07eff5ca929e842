"""Push: Android (FCM), iOS (APNs), web browsers (Web Push) and Windows (WNS), per app."""
