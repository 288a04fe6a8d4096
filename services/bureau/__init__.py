"""The Administrative Approval Bureau's agency service (代办): carries a case through the approval stages."""
